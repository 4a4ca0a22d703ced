use std::collections::HashMap;
use std::sync::Mutex;

use proptest::prelude::*;

use super::*;

/// One recorded execution: node, start and end offsets from the run's start.
#[derive(Debug, Clone, Copy)]
struct Span {
    node: usize,
    start: Duration,
    end: Duration,
}

/// Runs `dag` with an executor that sleeps `cost[node]` ms and fails the nodes in `fail`.
fn run_timed(
    dag: &Dag,
    options: ScheduleOptions,
    cost_ms: &[u64],
    fail: &[usize],
    cancel: &CancelToken,
) -> (Vec<NodeOutcome<usize, String>>, Vec<Span>, Vec<String>) {
    let t0 = Instant::now();
    let spans = Mutex::new(Vec::new());
    let mut events = Vec::new();
    let outcomes = schedule(
        dag,
        options,
        cancel,
        |task: &Task| {
            let node = task.node();
            let start = t0.elapsed();
            task.progress(&format!("step of {node}"));
            let deadline = Instant::now() + Duration::from_millis(cost_ms[node]);
            while Instant::now() < deadline {
                if task.cancel_token().is_cancelled() {
                    spans.lock().unwrap().push(Span {
                        node,
                        start,
                        end: t0.elapsed(),
                    });
                    return Err(format!("{node} cancelled"));
                }
                thread::sleep(Duration::from_millis(2));
            }
            spans.lock().unwrap().push(Span {
                node,
                start,
                end: t0.elapsed(),
            });
            if fail.contains(&node) {
                Err(format!("{node} broke"))
            } else {
                Ok(node * 10)
            }
        },
        &mut |e| {
            events.push(match e {
                Event::Started { node } => format!("start {node}"),
                Event::Progress { node, line } => format!("progress {node}: {line}"),
                Event::Finished { node, .. } => format!("done {node}"),
                Event::Failed { node, error, .. } => format!("failed {node}: {error}"),
                Event::Skipped { node, because } => format!("skipped {node} because {because}"),
                Event::Cancelled { node } => format!("cancelled {node}"),
            });
        },
    );
    (outcomes, spans.into_inner().unwrap(), events)
}

fn opts(jobs: usize, fail_fast: bool) -> ScheduleOptions {
    ScheduleOptions { jobs, fail_fast }
}

fn span_of(spans: &[Span], node: usize) -> Span {
    *spans.iter().find(|s| s.node == node).unwrap()
}

#[test]
fn dag_rejects_cycles_and_unknown_nodes() {
    assert_eq!(
        Dag::new(vec![vec![], vec![2], vec![1]]),
        Err(DagError::Cycle { nodes: vec![1, 2] })
    );
    assert_eq!(
        Dag::new(vec![vec![0]]),
        Err(DagError::Cycle { nodes: vec![0] })
    );
    assert_eq!(
        Dag::new(vec![vec![3]]),
        Err(DagError::UnknownDependency {
            node: 0,
            dependency: 3
        })
    );
    assert!(
        Dag::new(vec![vec![], vec![0, 0]]).is_ok(),
        "a repeated edge is one edge"
    );
}

#[test]
fn a_chain_runs_in_order_and_each_starts_right_after_its_parent() {
    let dag = Dag::new(vec![vec![], vec![0], vec![1]]).unwrap();
    let (outcomes, spans, events) = run_timed(
        &dag,
        opts(4, false),
        &[30, 30, 30],
        &[],
        &CancelToken::new(),
    );
    assert!(matches!(
        outcomes[2],
        NodeOutcome::Succeeded { value: 20, .. }
    ));
    for (parent, child) in [(0, 1), (1, 2)] {
        let (p, c) = (span_of(&spans, parent), span_of(&spans, child));
        assert!(c.start >= p.end, "{child} started before {parent} ended");
        assert!(
            c.start.saturating_sub(p.end) < Duration::from_millis(250),
            "{child} waited {:?}",
            c.start.saturating_sub(p.end)
        );
    }
    assert_eq!(
        events,
        [
            "start 0",
            "progress 0: step of 0",
            "done 0",
            "start 1",
            "progress 1: step of 1",
            "done 1",
            "start 2",
            "progress 2: step of 2",
            "done 2",
        ]
    );
}

#[test]
fn independent_nodes_overlap_up_to_the_job_limit() {
    let dag = Dag::new(vec![vec![], vec![], vec![], vec![]]).unwrap();
    let (_, spans, _) = run_timed(&dag, opts(2, false), &[100; 4], &[], &CancelToken::new());
    // At every start, at most 2 run; and the first two overlap.
    for s in &spans {
        let concurrent = spans
            .iter()
            .filter(|o| o.start <= s.start && s.start < o.end)
            .count();
        assert!(concurrent <= 2, "{concurrent} nodes ran at once");
    }
    let (a, b) = (span_of(&spans, 0), span_of(&spans, 1));
    assert!(
        a.start < b.end && b.start < a.end,
        "0 and 1 did not overlap: {a:?} {b:?}"
    );
    let total = spans.iter().map(|s| s.end).max().unwrap();
    assert!(
        total < Duration::from_millis(390),
        "4 x 100 ms on 2 jobs took {total:?}"
    );
}

#[test]
fn a_failure_skips_only_its_dependents_and_independent_work_goes_on() {
    // 0 -> 1 -> 2, 0 -> 3; 4 independent. 1 fails.
    let dag = Dag::new(vec![vec![], vec![0], vec![1], vec![0], vec![]]).unwrap();
    let (outcomes, _, events) = run_timed(
        &dag,
        opts(2, false),
        &[10, 10, 10, 50, 80],
        &[1],
        &CancelToken::new(),
    );
    assert!(matches!(&outcomes[1], NodeOutcome::Failed { error, .. } if error == "1 broke"));
    assert!(matches!(outcomes[2], NodeOutcome::Skipped { because: 1 }));
    assert!(matches!(outcomes[3], NodeOutcome::Succeeded { .. }));
    assert!(matches!(outcomes[4], NodeOutcome::Succeeded { .. }));
    assert!(events.contains(&"skipped 2 because 1".to_owned()));
    assert!(!events.contains(&"start 2".to_owned()));
}

#[test]
fn a_grandchild_is_skipped_because_of_the_failed_ancestor() {
    let dag = Dag::new(vec![vec![], vec![0], vec![1], vec![2, 0]]).unwrap();
    let (outcomes, _, _) = run_timed(
        &dag,
        opts(1, false),
        &[5, 5, 5, 5],
        &[0],
        &CancelToken::new(),
    );
    for (node, outcome) in outcomes.iter().enumerate().skip(1) {
        assert!(
            matches!(outcome, NodeOutcome::Skipped { because: 0 }),
            "{node}: {outcome:?}"
        );
    }
}

#[test]
fn fail_fast_cancels_running_work_and_starts_nothing_new() {
    // 0 fails quickly; 1 is long and running; 2 and 3 wait for a free job.
    let dag = Dag::new(vec![vec![], vec![], vec![], vec![]]).unwrap();
    let started = Instant::now();
    let (outcomes, spans, _) = run_timed(
        &dag,
        opts(2, true),
        &[10, 5_000, 10, 10],
        &[0],
        &CancelToken::new(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(outcomes[0], NodeOutcome::Failed { .. }));
    assert!(
        matches!(&outcomes[1], NodeOutcome::Cancelled { error: Some(e) } if e == "1 cancelled")
    );
    assert!(matches!(
        outcomes[2],
        NodeOutcome::Cancelled { error: None }
    ));
    assert!(matches!(
        outcomes[3],
        NodeOutcome::Cancelled { error: None }
    ));
    assert_eq!(spans.len(), 2);
}

#[test]
fn without_fail_fast_a_failure_does_not_stop_others() {
    let dag = Dag::new(vec![vec![], vec![], vec![]]).unwrap();
    let (outcomes, _, _) = run_timed(&dag, opts(1, false), &[5, 5, 5], &[0], &CancelToken::new());
    assert!(matches!(outcomes[1], NodeOutcome::Succeeded { .. }));
    assert!(matches!(outcomes[2], NodeOutcome::Succeeded { .. }));
}

#[test]
fn cancelling_stops_running_nodes_and_everything_after_them() {
    let dag = Dag::new(vec![vec![], vec![0], vec![]]).unwrap();
    let cancel = CancelToken::new();
    let canceller = cancel.clone();
    let timer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    let started = Instant::now();
    let (outcomes, _, events) = run_timed(&dag, opts(2, false), &[5_000, 10, 5_000], &[], &cancel);
    timer.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, NodeOutcome::Cancelled { .. })),
        "{outcomes:?}"
    );
    assert_eq!(
        events.iter().filter(|e| e.starts_with("cancelled")).count(),
        3
    );
}

#[test]
fn a_panicking_executor_panics_the_caller_after_stopping_the_rest() {
    let dag = Dag::new(vec![vec![], vec![]]).unwrap();
    let result = panic::catch_unwind(|| {
        schedule::<(), (), _>(
            &dag,
            opts(2, false),
            &CancelToken::new(),
            |task: &Task| {
                assert!(task.node() != 0, "executor bug");
                while !task.cancel_token().is_cancelled() {
                    thread::sleep(Duration::from_millis(2));
                }
                Err(())
            },
            &mut |_| {},
        )
    });
    assert!(result.is_err());
}

fn arb_dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
    // Node i may depend only on nodes < i: always acyclic; then shuffled indices.
    (1usize..24)
        .prop_flat_map(|n| {
            let deps = (0..n)
                .map(|i| proptest::collection::vec(0..i.max(1), 0..=i.min(3)))
                .collect::<Vec<_>>();
            (
                deps,
                Just(n).prop_perturb(|n, mut rng| {
                    let mut perm: Vec<usize> = (0..n).collect();
                    for i in (1..n).rev() {
                        perm.swap(i, rng.random_range(0..=i));
                    }
                    perm
                }),
            )
        })
        .prop_map(|(deps, perm)| {
            let n = deps.len();
            let mut out = vec![Vec::new(); n];
            for (i, ds) in deps.into_iter().enumerate() {
                out[perm[i]] = if i == 0 {
                    Vec::new()
                } else {
                    ds.into_iter().map(|d| perm[d]).collect()
                };
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_edge_is_respected_and_every_node_runs_once(deps in arb_dag(), jobs in 1usize..5) {
        let dag = Dag::new(deps.clone()).unwrap();
        let order = Mutex::new(Vec::new());
        let ends: Mutex<HashMap<usize, usize>> = Mutex::new(HashMap::new());
        let outcomes = schedule::<(), (), _>(
            &dag,
            ScheduleOptions { jobs, fail_fast: false },
            &CancelToken::new(),
            |task: &Task| {
                let node = task.node();
                let ends_now = ends.lock().unwrap();
                for d in dag.deps(node) {
                    assert!(ends_now.contains_key(d), "{node} started before its dependency {d} ended");
                }
                drop(ends_now);
                order.lock().unwrap().push(node);
                thread::yield_now();
                let mut e = ends.lock().unwrap();
                let k = e.len();
                e.insert(node, k);
                Ok(())
            },
            &mut |_| {},
        );
        let all_ok = outcomes.iter().all(|o| matches!(o, NodeOutcome::Succeeded { .. }));
        prop_assert!(all_ok);
        let order = order.into_inner().unwrap();
        prop_assert_eq!(order.len(), deps.len());
        let position: HashMap<usize, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        for (node, ds) in deps.iter().enumerate() {
            for d in ds {
                prop_assert!(position[d] < position[&node]);
            }
        }
    }

    #[test]
    fn failures_skip_exactly_the_descendants(deps in arb_dag(), fail_mask in any::<u32>()) {
        let dag = Dag::new(deps.clone()).unwrap();
        let n = deps.len();
        let fails = |i: usize| fail_mask & (1 << (i % 32)) != 0;
        let outcomes = schedule::<(), (), _>(
            &dag,
            ScheduleOptions { jobs: 3, fail_fast: false },
            &CancelToken::new(),
            |task: &Task| if fails(task.node()) { Err(()) } else { Ok(()) },
            &mut |_| {},
        );
        // A node runs iff all its ancestors succeeded.
        let mut ran = vec![false; n];
        let mut order: Vec<usize> = (0..n).collect();
        // Process in a topological order: repeat until stable (n is small).
        for _ in 0..n {
            for &i in &order {
                ran[i] = deps[i].iter().all(|&d| ran[d] && !fails(d));
            }
        }
        order.clear();
        for i in 0..n {
            match &outcomes[i] {
                NodeOutcome::Succeeded { .. } => prop_assert!(ran[i] && !fails(i)),
                NodeOutcome::Failed { .. } => prop_assert!(ran[i] && fails(i)),
                NodeOutcome::Skipped { because } => {
                    prop_assert!(!ran[i]);
                    prop_assert!(fails(*because));
                    let cause_failed = matches!(outcomes[*because], NodeOutcome::Failed { .. });
                    prop_assert!(cause_failed);
                }
                NodeOutcome::Cancelled { .. } => prop_assert!(false, "nothing was cancelled"),
            }
        }
    }
}
