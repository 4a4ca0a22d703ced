//! Measures im-build against running the same builder commands directly, and the
//! scheduler's `-j 2` speed-up on two independent images. Uses buildah with storage of
//! its own and im-testkit's busybox base image (run `scripts/setup` first).
//!
//! ```text
//! cargo run --release -p im-build --example measure -- [IMAGES] [ROUNDS]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use im_build::backend::{Buildah, ContainersToolSettings, Prepare};
use im_build::{
    BuildStep, Builder, CancelToken, Dag, OciArchive, Parent, Platform, PullPolicy,
    ScheduleOptions, execute_step, schedule,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let images: usize = args
        .next()
        .map_or(5, |a| a.parse().expect("IMAGES is a number"));
    let rounds: usize = args
        .next()
        .map_or(2, |a| a.parse().expect("ROUNDS is a number"));
    let root = tempfile::Builder::new()
        .prefix("im-build-measure")
        .tempdir()
        .unwrap();
    let storage = root.path().join("storage");
    let builder = Buildah::new(ContainersToolSettings {
        program: "/usr/bin/buildah".into(),
        storage_driver: Some("vfs".to_owned()),
        root: Some(storage.join("root")),
        runroot: Some(storage.join("runroot")),
        isolation: "chroot".to_owned(),
    });
    let busybox = im_testkit::busybox_base_image(im_testkit::Platform::LinuxAmd64);
    let base = Parent {
        reference: "im-test/busybox:stable".to_owned(),
        archive: busybox.oci_archive().to_owned(),
    };

    // Warm up (page cache, first pull into the store).
    let warm = small_step(root.path(), "warm", &base, "true");
    execute_step(&builder, &warm, &CancelToken::new(), &mut |_| {}).unwrap();

    let steps: Vec<BuildStep> = (0..images)
        .map(|i| {
            small_step(
                root.path(),
                &format!("img{i}"),
                &base,
                &format!("echo {i} > /i.txt"),
            )
        })
        .collect();
    let mut direct = Vec::new();
    let mut ours = Vec::new();
    // CPU seconds (own, children's): robust to other load on the machine, unlike wall time.
    let (mut direct_cpu, mut ours_cpu) = ((0.0, 0.0), (0.0, 0.0));
    for _ in 0..rounds {
        let before = cpu();
        direct.push(run_direct(&builder, &steps));
        let mid = cpu();
        ours.push(run_ours(&builder, &steps));
        let after = cpu();
        direct_cpu.1 += mid.1 - before.1;
        ours_cpu.0 += after.0 - mid.0;
        ours_cpu.1 += after.1 - mid.1;
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap();
    let (d, o) = (mean(&direct), mean(&ours));
    println!(
        "{images} small images in sequence, {rounds} rounds: direct commands {:.2}s, im-build {:.2}s, overhead {:+.1}% ({:+.0} ms per image)",
        d.as_secs_f64(),
        o.as_secs_f64(),
        (o.as_secs_f64() / d.as_secs_f64() - 1.0) * 100.0,
        (o.as_secs_f64() - d.as_secs_f64()) * 1000.0 / f64::from(u32::try_from(images).unwrap()),
    );
    println!("  direct rounds: {direct:.2?}\n  im-build rounds: {ours:.2?}");
    let per_image = |secs: f64| secs * 1000.0 / f64::from(u32::try_from(images * rounds).unwrap());
    println!(
        "  CPU per image: builder commands run directly {:.0} ms; through im-build {:.0} ms in the builder + {:.0} ms in im-build itself (conversion, hashing, logging)",
        per_image(direct_cpu.1),
        per_image(ours_cpu.1),
        per_image(ours_cpu.0),
    );

    // -j 1 vs -j 2 on two independent images: a CPU-bound RUN step (bounded by the two
    // cores and whatever else runs) and a waiting one (network- or I/O-bound builds).
    let dag = Dag::new(vec![vec![], vec![]]).unwrap();
    for (what, work) in [
        (
            "CPU-bound",
            "i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done",
        ),
        ("waiting (sleep 3)", "sleep 3"),
    ] {
        let pair: Vec<BuildStep> = ["left", "right"]
            .iter()
            .map(|n| small_step(root.path(), &format!("{n}-{}", what.len()), &base, work))
            .collect();
        let mut times = BTreeMap::new();
        for jobs in [1, 2, 1, 2] {
            let started = Instant::now();
            let outcomes = schedule(
                &dag,
                ScheduleOptions {
                    jobs,
                    fail_fast: true,
                },
                &CancelToken::new(),
                |task| {
                    execute_step(
                        &builder,
                        &pair[task.node()],
                        task.cancel_token(),
                        &mut |_| {},
                    )
                },
                &mut |_| {},
            );
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, im_build::NodeOutcome::Succeeded { .. }))
            );
            times
                .entry(jobs)
                .or_insert_with(Vec::new)
                .push(started.elapsed().as_secs_f64());
        }
        let best = |j| times[&j].iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "two independent {what} images: -j 1 {:.2}s, -j 2 {:.2}s (best of 2), speed-up {:.2}x",
            best(1),
            best(2),
            best(1) / best(2)
        );
    }
    if let Ok(load) = fs_err::read_to_string("/proc/loadavg") {
        println!("load average at the end: {}", load.trim());
    }
}

/// (own, children's) CPU seconds so far, from /proc/self/stat.
fn cpu() -> (f64, f64) {
    let stat = fs_err::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<f64> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17; clock ticks are 1/100 s on Linux.
    (
        (fields[11] + fields[12]) / 100.0,
        (fields[13] + fields[14]) / 100.0,
    )
}

fn small_step(root: &Path, name: &str, base: &Parent, run: &str) -> BuildStep {
    let dir = root.join("dist").join(name).join("1");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(
        dir.join("Dockerfile"),
        format!("FROM {}\nRUN {run}\n", base.reference),
    )
    .unwrap();
    fs_err::write(dir.join(".dockerignore"), "linux-*\n").unwrap();
    let out = dir.join("linux-amd64");
    BuildStep {
        node: format!("{name}:1"),
        platform: Platform::linux("amd64"),
        context_dir: dir.clone(),
        dockerfile: dir.join("Dockerfile"),
        image: format!("{name}:1"),
        build_args: BTreeMap::new(),
        labels: BTreeMap::from([("org.opencontainers.image.title".to_owned(), name.to_owned())]),
        parents: vec![base.clone()],
        output: out.join("image.tar"),
        log: out.join("build.log"),
        source_date_epoch: Some(1_700_000_000),
        no_cache: false,
        cache: None,
        pull: PullPolicy::Never,
    }
}

/// The plan's commands, run directly with output discarded; the files the plan prepares
/// are made beforehand and not timed.
fn run_direct(builder: &Buildah, steps: &[BuildStep]) -> Duration {
    let mut plans = Vec::new();
    for step in steps {
        let digests: Vec<String> = step
            .parents
            .iter()
            .map(|p| {
                OciArchive::open(&p.archive)
                    .unwrap()
                    .image()
                    .unwrap()
                    .manifest_digest
            })
            .collect();
        let plan = builder.plan(step, &digests).unwrap();
        let _ = fs_err::remove_dir_all(&plan.work_dir);
        fs_err::create_dir_all(&plan.work_dir).unwrap();
        for p in &plan.prepare {
            match p {
                Prepare::RewriteDockerfile {
                    source,
                    dest,
                    replacements,
                    build_args,
                } => {
                    let text = fs_err::read_to_string(source).unwrap();
                    fs_err::write(
                        dest,
                        im_build::rewrite::rewrite_parents(&text, replacements, build_args).text,
                    )
                    .unwrap();
                }
                Prepare::DockerArchive { parent, dest, tag } => {
                    im_build::docker_archive::oci_to_docker_archive(parent, dest, tag).unwrap();
                }
                Prepare::OciLayout { .. } => unreachable!("buildah prepares no layouts"),
            }
        }
        plans.push(plan);
    }
    let started = Instant::now();
    for plan in &plans {
        for cmd in plan.commands.iter().chain(&plan.cleanup) {
            let status = Command::new(&cmd.program)
                .args(&cmd.args)
                .envs(&cmd.env)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{}", cmd.display());
        }
    }
    let took = started.elapsed();
    for plan in &plans {
        fs_err::remove_dir_all(&plan.work_dir).unwrap();
    }
    took
}

fn run_ours(builder: &Buildah, steps: &[BuildStep]) -> Duration {
    let started = Instant::now();
    for step in steps {
        execute_step(builder, step, &CancelToken::new(), &mut |_| {}).unwrap();
    }
    started.elapsed()
}
