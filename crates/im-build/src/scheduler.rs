//! The scheduler: runs the nodes of a DAG on up to `jobs` worker threads, each as soon
//! as all its dependencies succeeded. A failure skips the failed node's dependents
//! (saying which failure) and lets independent subgraphs go on, unless `fail_fast`
//! cancels running work and starts nothing new. Cancelling the token stops everything.
//! Events (started, progress, finished, failed, skipped, cancelled) are delivered on the
//! calling thread, in order, for progress displays.

use std::collections::{BTreeSet, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use im_process::CancelToken;

/// Dependencies between nodes `0..n`: `deps[i]` are the nodes `i` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dag {
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
}

/// A dependency list that is not a DAG.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("node {node} depends on node {dependency}, which does not exist")]
    UnknownDependency { node: usize, dependency: usize },
    #[error("the dependencies form a cycle through nodes {nodes:?}")]
    Cycle { nodes: Vec<usize> },
}

impl Dag {
    pub fn new(deps: Vec<Vec<usize>>) -> Result<Self, DagError> {
        let n = deps.len();
        let mut dependents = vec![Vec::new(); n];
        for (node, ds) in deps.iter().enumerate() {
            for &d in ds {
                if d >= n {
                    return Err(DagError::UnknownDependency {
                        node,
                        dependency: d,
                    });
                }
                if !dependents[d].contains(&node) {
                    dependents[d].push(node);
                }
            }
        }
        // Kahn's algorithm: whatever is never freed lies on or behind a cycle.
        let mut remaining: Vec<usize> = deps.iter().map(|d| unique(d).len()).collect();
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
        let mut seen = 0;
        while let Some(i) = queue.pop_front() {
            seen += 1;
            for &d in &dependents[i] {
                remaining[d] -= 1;
                if remaining[d] == 0 {
                    queue.push_back(d);
                }
            }
        }
        if seen < n {
            let nodes = (0..n).filter(|&i| remaining[i] > 0).collect();
            return Err(DagError::Cycle { nodes });
        }
        Ok(Dag { deps, dependents })
    }

    pub fn len(&self) -> usize {
        self.deps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    pub fn deps(&self, node: usize) -> &[usize] {
        &self.deps[node]
    }

    pub fn dependents(&self, node: usize) -> &[usize] {
        &self.dependents[node]
    }
}

fn unique(v: &[usize]) -> BTreeSet<usize> {
    v.iter().copied().collect()
}

/// How to schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// Nodes run at once (at least 1).
    pub jobs: usize,
    /// On the first failure: cancel running nodes and start no new ones.
    pub fail_fast: bool,
}

/// What the scheduler reports, in order, on the calling thread.
#[derive(Debug)]
pub enum Event<'a, E> {
    Started {
        node: usize,
    },
    /// A progress line from the running node (e.g. its current build step).
    Progress {
        node: usize,
        line: &'a str,
    },
    Finished {
        node: usize,
        duration: Duration,
    },
    Failed {
        node: usize,
        error: &'a E,
        duration: Duration,
    },
    /// Not run because `because` (an ancestor) failed.
    Skipped {
        node: usize,
        because: usize,
    },
    /// Stopped or never started because the run was cancelled (or failed fast).
    Cancelled {
        node: usize,
    },
}

/// How each node ended.
#[derive(Debug, PartialEq, Eq)]
pub enum NodeOutcome<T, E> {
    Succeeded {
        value: T,
        duration: Duration,
    },
    Failed {
        error: E,
        duration: Duration,
    },
    Skipped {
        because: usize,
    },
    /// Cancelled while running (`error` is what the executor returned) or never started.
    Cancelled {
        error: Option<E>,
    },
}

/// What an executor gets for one node.
pub struct Task {
    node: usize,
    cancel: CancelToken,
    events: mpsc::Sender<Message<(), ()>>,
}

impl Task {
    pub fn node(&self) -> usize {
        self.node
    }

    /// Set when the run is cancelled or fails fast; pass it to the runner.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Reports a progress line for this node.
    pub fn progress(&self, line: &str) {
        let _ = self.events.send(Message::Progress {
            node: self.node,
            line: line.to_owned(),
        });
    }
}

enum Message<T, E> {
    Progress {
        node: usize,
        line: String,
    },
    Done {
        node: usize,
        result: Result<T, E>,
        duration: Duration,
    },
    Panicked {
        payload: Box<dyn std::any::Any + Send>,
    },
}

/// Runs every node of `dag` with `exec`; returns each node's outcome, by index.
pub fn schedule<T, E, F>(
    dag: &Dag,
    options: ScheduleOptions,
    cancel: &CancelToken,
    exec: F,
    on_event: &mut dyn FnMut(Event<'_, E>),
) -> Vec<NodeOutcome<T, E>>
where
    T: Send,
    E: Send,
    F: Fn(&Task) -> Result<T, E> + Sync,
{
    let n = dag.len();
    let jobs = options.jobs.max(1);
    let run_token = CancelToken::new();
    let mut outcomes: Vec<Option<NodeOutcome<T, E>>> = (0..n).map(|_| None).collect();
    let mut remaining: Vec<usize> = (0..n).map(|i| unique(dag.deps(i)).len()).collect();
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut running = 0usize;
    let (progress_tx, progress_rx) = mpsc::channel::<Message<(), ()>>();
    let (done_tx, done_rx) = mpsc::channel::<Message<T, E>>();
    let exec = &exec;
    let mut panicked = None;

    thread::scope(|scope| {
        loop {
            if cancel.is_cancelled() {
                run_token.cancel();
            }
            while !run_token.is_cancelled() && running < jobs {
                let Some(node) = ready.pop_first() else { break };
                running += 1;
                on_event(Event::Started { node });
                let task = Task {
                    node,
                    cancel: run_token.clone(),
                    events: progress_tx.clone(),
                };
                let done = done_tx.clone();
                scope.spawn(move || {
                    let started = Instant::now();
                    let message = match panic::catch_unwind(AssertUnwindSafe(|| exec(&task))) {
                        Ok(result) => Message::Done {
                            node,
                            result,
                            duration: started.elapsed(),
                        },
                        Err(payload) => Message::Panicked { payload },
                    };
                    let _ = done.send(message);
                });
            }
            while let Ok(Message::Progress { node, line }) = progress_rx.try_recv() {
                on_event(Event::Progress { node, line: &line });
            }
            if running == 0 {
                break;
            }
            let Ok(message) = done_rx.recv_timeout(Duration::from_millis(20)) else {
                continue;
            };
            let (node, result, duration) = match message {
                Message::Done {
                    node,
                    result,
                    duration,
                } => (node, result, duration),
                Message::Panicked { payload } => {
                    // Stop the others, then let the panic continue on this thread.
                    running -= 1;
                    run_token.cancel();
                    panicked.get_or_insert(payload);
                    continue;
                }
                Message::Progress { .. } => continue,
            };
            // Progress sent before the node finished comes first.
            while let Ok(Message::Progress { node, line }) = progress_rx.try_recv() {
                on_event(Event::Progress { node, line: &line });
            }
            running -= 1;
            match result {
                Ok(value) => {
                    on_event(Event::Finished { node, duration });
                    outcomes[node] = Some(NodeOutcome::Succeeded { value, duration });
                    for &d in dag.dependents(node) {
                        remaining[d] -= 1;
                        if remaining[d] == 0 && outcomes[d].is_none() {
                            ready.insert(d);
                        }
                    }
                }
                Err(error) if run_token.is_cancelled() => {
                    on_event(Event::Cancelled { node });
                    outcomes[node] = Some(NodeOutcome::Cancelled { error: Some(error) });
                }
                Err(error) => {
                    on_event(Event::Failed {
                        node,
                        error: &error,
                        duration,
                    });
                    outcomes[node] = Some(NodeOutcome::Failed { error, duration });
                    let mut stack: Vec<usize> = dag.dependents(node).to_vec();
                    while let Some(d) = stack.pop() {
                        if outcomes[d].is_none() {
                            ready.remove(&d);
                            on_event(Event::Skipped {
                                node: d,
                                because: node,
                            });
                            outcomes[d] = Some(NodeOutcome::Skipped { because: node });
                            stack.extend_from_slice(dag.dependents(d));
                        }
                    }
                    if options.fail_fast {
                        run_token.cancel();
                    }
                }
            }
        }
    });
    if let Some(payload) = panicked {
        panic::resume_unwind(payload);
    }

    outcomes
        .into_iter()
        .enumerate()
        .map(|(node, outcome)| {
            outcome.unwrap_or_else(|| {
                on_event(Event::Cancelled { node });
                NodeOutcome::Cancelled { error: None }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
