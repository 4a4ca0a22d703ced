//! The parts of an image's config that tests look at, in container-structure-test's shapes.

use std::collections::BTreeMap;

use im_oci::ImageConfiguration;

/// Env, labels, entrypoint, cmd, workdir, user, exposed ports and volumes of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMetadata {
    /// `KEY=value` entries in the image's order.
    pub env_list: Vec<String>,
    /// The same as a map (a later duplicate wins, as in Docker).
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub workdir: String,
    pub user: String,
    /// As the config stores them: `8080/tcp`.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
}

impl ImageMetadata {
    pub fn from_config(config: &ImageConfiguration) -> Self {
        let Some(c) = config.config() else {
            return Self::default();
        };
        let env_list = c.env().clone().unwrap_or_default();
        let env = env_list
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (entry.clone(), String::new()),
            })
            .collect();
        Self {
            env_list,
            env,
            labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            workdir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            exposed_ports: c.exposed_ports().clone().unwrap_or_default(),
            volumes: c.volumes().clone().unwrap_or_default(),
        }
    }

    /// container-structure-test's `PortInList`: a bare port matches any protocol, a port with
    /// a protocol only that protocol (`8080` matches `8080/tcp`; `53/udp` not `53/tcp`).
    pub fn exposes(&self, port: &str) -> bool {
        let (want_port, want_proto) = port.split_once('/').unwrap_or((port, ""));
        self.exposed_ports.iter().any(|exposed| {
            let (have_port, have_proto) = exposed.split_once('/').unwrap_or((exposed, ""));
            have_port == want_port && (want_proto.is_empty() || want_proto == have_proto)
        })
    }
}
