//! image-manager's own rules, beside hadolint's: what only a tool that knows the whole project
//! can see. Each is a pure function of what `im_exec::lint` hands it.
//!
//! - `IM001` an external `FROM` without a digest (`@sha256:…`) in an image whose folder has a
//!   `packages.lock` (the proof of concept's lock, next to `image.yml`): a locked image should
//!   start from the exact base it was locked against.
//! - `IM002` a rootfs file that looks like a secret: an SSH private key (`id_rsa`, ...), a
//!   `.env` file, a PEM private key, an AWS access key ID, a `.netrc`/`.git-credentials`/AWS
//!   credentials file. Everything in a rootfs is copied into the image.
//! - `IM003` a tag without a test config.
//! - `IM004` (with `lint --registry`) an alias that would move to a lower version than the one
//!   it points at in the registry.

use crate::finding::Level;

/// One of image-manager's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub level: Level,
    /// One line: what the rule finds.
    pub summary: &'static str,
}

pub const UNPINNED_BASE: Rule = Rule {
    id: "IM001",
    name: "external-base-not-pinned",
    level: Level::Warning,
    summary: "An external base image without a digest in an image that has a packages.lock",
};

pub const SECRET_IN_ROOTFS: Rule = Rule {
    id: "IM002",
    name: "secret-in-rootfs",
    level: Level::Error,
    summary: "A rootfs file that looks like a secret (it would be copied into the image)",
};

pub const NO_TEST_CONFIG: Rule = Rule {
    id: "IM003",
    name: "tag-without-test-config",
    level: Level::Warning,
    summary: "A tag without a container-structure-test config",
};

pub const ALIAS_MOVES_DOWN: Rule = Rule {
    id: "IM004",
    name: "alias-moves-down",
    level: Level::Warning,
    summary: "An alias that would move to a lower version than the one it points at in the registry",
};

/// Every rule of image-manager's own.
pub const RULES: [Rule; 4] = [
    UNPINNED_BASE,
    SECRET_IN_ROOTFS,
    NO_TEST_CONFIG,
    ALIAS_MOVES_DOWN,
];

/// The lock file whose presence makes `IM001` apply (next to `image.yml`).
pub const LOCK_FILE: &str = "packages.lock";

/// Where a rule of ours, or hadolint's, is explained.
pub fn help_uri(rule: &str) -> Option<String> {
    if rule.starts_with("DL") {
        Some(format!("https://github.com/hadolint/hadolint/wiki/{rule}"))
    } else if rule.starts_with("SC") {
        Some(format!("https://www.shellcheck.net/wiki/{rule}"))
    } else {
        None
    }
}

/// `IM001`'s message for a `FROM` of `reference` (an external image without a digest).
pub fn unpinned_base_message(reference: &str, lock: &str) -> String {
    format!(
        "`FROM {reference}` has no digest although {lock} exists: pin it (`{reference}@sha256:…`) so the image starts from the base the lock was made against"
    )
}

/// `IM004`'s message: `alias` now points at `now`, the registry's `reference` at `pushed`.
pub fn alias_moves_down_message(alias: &str, now: &str, pushed: &str, reference: &str) -> String {
    format!(
        "the alias `{alias}` would move down from {pushed} (what {reference} is now) to {now}: a push would hand users of `{alias}` an older version; drop or pin the alias (`aliases: {{\"{alias}\": {pushed}}}`) or bring {pushed} back"
    )
}

/// `IM003`'s message (the finding lists the tags).
pub fn no_test_config_message() -> String {
    "no test config: add test.yml.jinja2 (container-structure-test format) next to this image.yml"
        .to_owned()
}

/// `IM002`'s message for the rootfs file at `inside` (its path in the image).
pub fn secret_message(inside: &str, what: &str) -> String {
    format!(
        "/{} looks like {what}, and everything in a rootfs is copied into the image: keep secrets out of images/ (a build that needs one can use `RUN --mount=type=secret`)",
        inside.trim_start_matches('/')
    )
}

/// How many bytes of a rootfs file are searched for secrets.
pub const SECRET_SCAN_BYTES: usize = 64 * 1024;

/// What kind of secret the rootfs file `path` (its path inside the image) with `content` (its
/// first [`SECRET_SCAN_BYTES`]) looks like, and on which line, if any.
pub fn secret(path: &str, content: &[u8]) -> Option<(&'static str, Option<usize>)> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let by_name = match name {
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" | "id_ecdsa_sk" | "id_ed25519_sk" => {
            Some("an SSH private key")
        }
        ".env" => Some("a .env file (usually holds credentials)"),
        ".netrc" | ".git-credentials" | ".pgpass" => Some("a credentials file"),
        "credentials" if path.ends_with(".aws/credentials") => Some("an AWS credentials file"),
        _ if name.starts_with(".env.")
            && !matches!(
                &name[5..],
                "example" | "sample" | "template" | "dist" | "defaults"
            ) =>
        {
            Some("a .env file (usually holds credentials)")
        }
        _ => None,
    };
    let text = String::from_utf8_lossy(content);
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    if let Some(at) = private_key(&text) {
        return Some((
            "a private key (`-----BEGIN … PRIVATE KEY-----`)",
            Some(line_of(at)),
        ));
    }
    if let Some(at) = aws_access_key(&text) {
        return Some(("an AWS access key ID", Some(line_of(at))));
    }
    by_name.map(|what| (what, None))
}

/// The offset of a PEM private key block (`-----BEGIN RSA PRIVATE KEY-----`,
/// `-----BEGIN OPENSSH PRIVATE KEY-----`, `-----BEGIN PGP PRIVATE KEY BLOCK-----`, ...).
fn private_key(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find("-----BEGIN ") {
        let at = from + found;
        let rest = &text[at + 11..];
        let label = rest.split("-----").next().unwrap_or_default();
        if label.len() < 60
            && (label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK"))
        {
            return Some(at);
        }
        from = at + 11;
    }
    None
}

/// The offset of an AWS access key ID: `AKIA`/`ASIA` and 16 more of `A-Z2-7`, not inside a
/// longer word.
fn aws_access_key(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric();
    ["AKIA", "ASIA"].iter().find_map(|prefix| {
        text.match_indices(prefix).map(|(at, _)| at).find(|&at| {
            let end = at + 20;
            end <= bytes.len()
                && bytes[at + 4..end]
                    .iter()
                    .all(|&b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
                && (at == 0 || !word(bytes[at - 1]))
                && (end == bytes.len() || !word(bytes[end]))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_by_name_and_by_content() {
        assert_eq!(
            secret("root/.ssh/id_rsa", b"x").unwrap().0,
            "an SSH private key"
        );
        assert!(secret("root/.ssh/id_rsa.pub", b"ssh-rsa AAAA").is_none());
        assert!(secret("srv/app/.env", b"A=1").is_some());
        assert!(secret("srv/app/.env.production", b"A=1").is_some());
        assert!(secret("srv/app/.env.example", b"A=").is_none());
        assert!(secret("root/.aws/credentials", b"[default]").is_some());
        let pem = b"# cert\n-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(
            secret("etc/ssl/site.pem", pem),
            Some(("a private key (`-----BEGIN … PRIVATE KEY-----`)", Some(2)))
        );
        let cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(secret("etc/ssl/site.pem", cert).is_none());
        let aws = b"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n";
        assert_eq!(
            secret("etc/app.ini", aws),
            Some(("an AWS access key ID", Some(2)))
        );
        assert!(secret("etc/app.ini", b"XAKIAIOSFODNN7EXAMPLE").is_none());
        assert!(secret("etc/app.ini", b"AKIAIOSFODNN7EXAMPL").is_none());
        assert!(secret("etc/motd", b"welcome\n").is_none());
    }

    #[test]
    fn help_points_at_the_rule_pages() {
        assert_eq!(
            help_uri("DL3008").as_deref(),
            Some("https://github.com/hadolint/hadolint/wiki/DL3008")
        );
        assert_eq!(
            help_uri("SC2086").as_deref(),
            Some("https://www.shellcheck.net/wiki/SC2086")
        );
        assert_eq!(help_uri("IM001"), None);
    }
}
