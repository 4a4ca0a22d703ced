//! A minimal front end for benchmarks and manual runs until `image-manager test` exists:
//!
//! `structure-test --driver native|docker|podman|buildah|cst-tar|cst-docker --image TAR
//!  --config FILE [--config FILE...] [--junit FILE] [--json] [--cst BIN]`
//!
//! Docker is reached through `DOCKER_HOST`; prints `N passed, M failed` (or the JSON report)
//! and exits 1 when a test failed.

use std::path::PathBuf;
use std::sync::Arc;

use im_structure_test::{
    CliRuntime, CstBackend, CstDriver, Driver, ImageSource, Job, Runtime, RuntimeKind,
    SuiteOptions, Target, load_config, run_all,
};

fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let mut driver = "native".to_owned();
    let (mut image, mut configs, mut junit, mut json) = (None, Vec::new(), None, false);
    let mut cst_bin = PathBuf::from("container-structure-test");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--driver" => driver = args.next().ok_or("--driver needs a value")?,
            "--image" => image = Some(PathBuf::from(args.next().ok_or("--image needs a value")?)),
            "--config" => configs.push(PathBuf::from(args.next().ok_or("--config needs a value")?)),
            "--junit" => junit = Some(PathBuf::from(args.next().ok_or("--junit needs a value")?)),
            "--cst" => cst_bin = PathBuf::from(args.next().ok_or("--cst needs a value")?),
            "--json" => json = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let image = image.ok_or("--image is required")?;
    let env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::var_os("DOCKER_HOST")
        .map(|h| vec![("DOCKER_HOST".into(), h)])
        .unwrap_or_default();
    let docker: Arc<dyn Runtime> = Arc::new(CliRuntime::new(
        RuntimeKind::Docker,
        "/usr/bin/docker".into(),
        vec![],
        env.clone(),
        None,
    ));
    let driver = match driver.as_str() {
        "native" | "docker" => Driver::Native {
            runtime: Some(docker),
        },
        "podman" => Driver::Native {
            runtime: Some(Arc::new(
                CliRuntime::new(RuntimeKind::Podman, "podman".into(), vec![], vec![], None)
                    .with_run_args(vec!["--network=host".into()]),
            )),
        },
        "buildah" => Driver::Native {
            runtime: Some(Arc::new(CliRuntime::new(
                RuntimeKind::Buildah,
                "buildah".into(),
                vec!["--storage-driver".into(), "vfs".into()],
                vec![],
                None,
            ))),
        },
        "cst-tar" => Driver::Cst {
            cst: Arc::new(CstDriver::new(cst_bin, CstBackend::Tar, env, None)),
            loader: None,
        },
        "cst-docker" => Driver::Cst {
            cst: Arc::new(CstDriver::new(cst_bin, CstBackend::Docker, env, None)),
            loader: Some(docker),
        },
        other => return Err(format!("unknown driver {other}").into()),
    };
    let mut jobs = Vec::new();
    for config_path in configs {
        let config = load_config(&config_path)?;
        let target = Target {
            label: image.display().to_string(),
            source: ImageSource::Archive {
                path: image.clone(),
                tag: None,
            },
            platform: None,
        };
        jobs.push(Job {
            config: Arc::new(config),
            config_path,
            target,
        });
    }
    let report = run_all(&jobs, &driver, &SuiteOptions::default());
    if let Some(path) = junit {
        fs_err::write(path, report.to_junit())?;
    }
    if json {
        println!("{}", report.to_json());
    } else {
        for image in &report.images {
            if let Some(error) = &image.error {
                eprintln!("{}: {error}", image.image);
            }
            for result in image.results.iter().filter(|r| !r.pass) {
                eprintln!(
                    "FAIL {}: {:?}",
                    result.full_name(),
                    result
                        .failures
                        .iter()
                        .map(|f| &f.message)
                        .collect::<Vec<_>>()
                );
            }
        }
        println!("{} passed, {} failed", report.passed(), report.failed());
    }
    Ok(if report.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
