//! Running a test config against images: the entry points the binary calls.
//!
//! [`run_suite`] tests one image with one config and returns its [`ImageReport`];
//! [`run_all`] tests many (config, image) pairs, `image_jobs` at a time, into a [`Report`].
//!
//! With [`Driver::Native`], file, content, metadata and license tests read the image itself
//! (no daemon) while command tests run concurrently through the given [`Runtime`]. With
//! [`Driver::Cst`], the real container-structure-test binary runs everything.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use im_oci::{Image, Limits, OpenOptions, Platform, open_image};

use crate::command::CommandRun;
use crate::config::TestConfig;
use crate::cst::{CstBackend, CstDriver};
use crate::metadata::ImageMetadata;
use crate::native::run_static_tests;
use crate::report::{Failure, ImageReport, Report, TestKind, TestResult};
use crate::runtime::{LoadedImage, Runtime};

/// Where the image under test comes from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// A docker-archive tar, OCI archive tar or OCI layout directory (`tag` picks one image
    /// when it holds several).
    Archive { path: PathBuf, tag: Option<String> },
    /// An image opened elsewhere (from a registry); `runtime_ref` is how a runtime can
    /// pull it for command tests (a reference), when command tests are to run.
    Opened {
        image: Box<Image>,
        runtime_ref: Option<String>,
    },
}

/// One image to test.
#[derive(Debug, Clone)]
pub struct Target {
    /// How the image is named in reports (`app:1.0`, a tar path).
    pub label: String,
    pub source: ImageSource,
    /// The platform to test; `None` accepts a single-platform image of any platform.
    pub platform: Option<Platform>,
}

/// How tests are run.
#[derive(Clone)]
pub enum Driver {
    /// Static tests natively; command tests through `runtime` (they fail, saying so, when
    /// there is none).
    Native { runtime: Option<Arc<dyn Runtime>> },
    /// The real container-structure-test; `loader` loads archives into Docker for its
    /// docker backend.
    Cst {
        cst: Arc<CstDriver>,
        loader: Option<Arc<dyn Runtime>>,
    },
}

impl Driver {
    /// The driver's name for reports.
    pub fn name(&self) -> String {
        match self {
            Self::Native {
                runtime: Some(runtime),
            } => format!("native+{}", runtime.kind().name()),
            Self::Native { runtime: None } => "native".to_owned(),
            Self::Cst { cst, .. } => match cst.backend {
                CstBackend::Docker => "cst-docker".to_owned(),
                CstBackend::Tar => "cst-tar".to_owned(),
            },
        }
    }
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Command tests of one image run this many at a time.
    pub command_jobs: usize,
    /// Images tested at the same time by [`run_all`].
    pub image_jobs: usize,
    /// How long one command test may take (setup, command and teardown) before it is
    /// killed and fails.
    pub command_timeout: Duration,
    pub limits: Limits,
}

/// The default of [`SuiteOptions::command_timeout`].
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            command_jobs: 4,
            image_jobs: 2,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            limits: Limits::default(),
        }
    }
}

/// One (config, image) pair of a run.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: Arc<TestConfig>,
    /// The config file, as it is named in reports (and given to container-structure-test).
    pub config_path: PathBuf,
    pub target: Target,
}

/// Tests one image with one config.
pub fn run_suite(
    config: &TestConfig,
    config_path: &Path,
    target: &Target,
    driver: &Driver,
    options: &SuiteOptions,
) -> ImageReport {
    let start = Instant::now();
    let mut report = ImageReport {
        image: target.label.clone(),
        platform: target.platform.as_ref().map(ToString::to_string),
        config: config_path.display().to_string(),
        driver: driver.name(),
        duration: std::time::Duration::ZERO,
        results: Vec::new(),
        error: None,
    };
    let outcome = match driver {
        Driver::Native { runtime } => run_native(config, target, runtime.as_deref(), options),
        Driver::Cst { cst, loader } => run_cst(config_path, target, cst, loader.as_deref()),
    };
    match outcome {
        Ok(results) => report.results = results,
        Err(message) => report.error = Some(message),
    }
    report.duration = start.elapsed();
    report
}

fn open(target: &Target, options: &SuiteOptions) -> Result<Image, String> {
    match &target.source {
        ImageSource::Archive { path, tag } => {
            let open_options = OpenOptions {
                tag: tag.clone(),
                platform: target.platform.clone(),
                limits: options.limits.clone(),
            };
            // Blob digests recorded when image-manager wrote the archive are trusted while it
            // is the same file (im_oci::trust); anything else is verified as it is read.
            open_image(path, &open_options)
                .map(|image| image.with_trusted_digests(im_oci::trust::trusted(path)))
                .map_err(|e| im_diag::error_chain(&e))
        }
        ImageSource::Opened { image, .. } => Ok(Image::clone(image)),
    }
}

fn run_native(
    config: &TestConfig,
    target: &Target,
    runtime: Option<&dyn Runtime>,
    options: &SuiteOptions,
) -> Result<Vec<TestResult>, String> {
    let image = open(target, options)?;
    let metadata = ImageMetadata::from_config(image.config());
    std::thread::scope(|scope| {
        let commands = (!config.command_tests.is_empty())
            .then(|| scope.spawn(|| command_results(config, target, runtime, &metadata, options)));
        let view = image.filesystem().map_err(|e| im_diag::error_chain(&e));
        let statics = view.map(|view| run_static_tests(config, &image, &view));
        let mut results = match commands {
            Some(handle) => handle.join().unwrap_or_else(|_| Vec::new()),
            None => Vec::new(),
        };
        results.extend(statics?);
        Ok(results)
    })
}

fn command_results(
    config: &TestConfig,
    target: &Target,
    runtime: Option<&dyn Runtime>,
    metadata: &ImageMetadata,
    options: &SuiteOptions,
) -> Vec<TestResult> {
    let fail_all = |message: String| {
        config
            .command_tests
            .iter()
            .map(|test| {
                let mut result = TestResult::new(TestKind::Command, &test.name);
                result.location = Some(test.location.to_string());
                result.fail(Failure::new(message.clone()));
                result
            })
            .collect()
    };
    let Some(runtime) = runtime else {
        return fail_all("command tests need a container runtime (docker, podman or buildah), and none was given".to_owned());
    };
    let (loaded, owned) = match &target.source {
        ImageSource::Archive { path, .. } => match runtime.load(path, target.platform.as_ref()) {
            Ok(loaded) => (loaded, true),
            Err(e) => {
                return fail_all(format!(
                    "{} could not load the image: {}",
                    runtime.kind().name(),
                    im_diag::error_chain(&e)
                ));
            }
        },
        ImageSource::Opened {
            runtime_ref: Some(reference),
            ..
        } => (
            LoadedImage {
                id: reference.clone(),
                platform: target.platform.clone(),
            },
            false,
        ),
        ImageSource::Opened {
            runtime_ref: None, ..
        } => {
            return fail_all(
                "command tests need the image as an archive or a reference a runtime can pull"
                    .to_owned(),
            );
        }
    };
    let results = CommandRun {
        config,
        runtime,
        image: &loaded,
        metadata,
        timeout: options.command_timeout,
    }
    .run_all(options.command_jobs);
    if owned {
        let _ = runtime.unload(&loaded);
    }
    results
}

fn run_cst(
    config_path: &Path,
    target: &Target,
    cst: &CstDriver,
    loader: Option<&dyn Runtime>,
) -> Result<Vec<TestResult>, String> {
    let ImageSource::Archive { path, .. } = &target.source else {
        return Err("the cst driver tests image archives only".to_owned());
    };
    match cst.backend {
        CstBackend::Tar => cst
            .run(
                config_path,
                &path.to_string_lossy(),
                target.platform.as_ref(),
            )
            .map_err(|e| im_diag::error_chain(&e)),
        CstBackend::Docker => {
            let loader =
                loader.ok_or("the cst docker driver needs Docker to load the image into")?;
            let loaded = loader
                .load(path, target.platform.as_ref())
                .map_err(|e| im_diag::error_chain(&e))?;
            let results = cst
                .run(config_path, &loaded.id, target.platform.as_ref())
                .map_err(|e| im_diag::error_chain(&e));
            let _ = loader.unload(&loaded);
            results
        }
    }
}

/// Tests every job, `options.image_jobs` images at a time; reports keep the jobs' order.
pub fn run_all(jobs: &[Job], driver: &Driver, options: &SuiteOptions) -> Report {
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Option<ImageReport>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..options.image_jobs.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let report =
                        run_suite(&job.config, &job.config_path, &job.target, driver, options);
                    if let Ok(mut slots) = reports.lock() {
                        slots[i] = Some(report);
                    }
                }
            });
        }
    });
    Report {
        images: reports
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect(),
    }
}
