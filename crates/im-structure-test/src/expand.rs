//! Go's `os.Expand`: how container-structure-test substitutes the image's environment into
//! file paths and command arguments before using them.
//!
//! `$NAME` and `${NAME}` become the variable's value (empty when unset), `$1`, `$*` and the
//! other shell specials are one-character names, `${}` and an unclosed `${` are eaten, and a
//! `$` followed by nothing usable stays a `$`.
//!
//! [`overlay`] builds the environments container-structure-test expands against: its docker
//! driver commits `globalEnvVars` (and, when a command test has `setup` commands, the test's
//! `envVars`) into the image it then inspects, each value expanded against the image it
//! commits onto.

use std::collections::BTreeMap;

use crate::config::EnvVar;

/// `base` with `vars` set on top, each value expanded against `base` (not against the other
/// `vars`), as a `docker commit` of a container created with those variables leaves it.
pub fn overlay(base: &BTreeMap<String, String>, vars: &[EnvVar]) -> BTreeMap<String, String> {
    let mut out = base.clone();
    for var in vars {
        out.insert(var.key.clone(), expand(&var.value, base));
    }
    out
}

fn is_special(b: u8) -> bool {
    matches!(b, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || b.is_ascii_digit()
}

fn is_name(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// Returns the name after a `$` and how many bytes the reference used.
fn shell_name(s: &[u8]) -> (&[u8], usize) {
    if s[0] == b'{' {
        if s.len() > 2 && is_special(s[1]) && s[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..s.len() {
            if s[i] == b'}' {
                if i == 1 {
                    return (&[], 2);
                }
                return (&s[1..i], i + 1);
            }
        }
        return (&[], 1);
    }
    if is_special(s[0]) {
        return (&s[0..1], 1);
    }
    let end = s.iter().position(|&b| !is_name(b)).unwrap_or(s.len());
    (&s[..end], end)
}

/// Expands `text` with `env` like Go's `os.Expand(text, func(k) { return env[k] })`.
pub fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let s = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut j = 0;
    while j < s.len() {
        if s[j] == b'$' && j + 1 < s.len() {
            out.extend_from_slice(&s[i..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            if name.is_empty() && width > 0 {
                // invalid syntax: eaten
            } else if name.is_empty() {
                out.push(b'$');
            } else {
                let key = String::from_utf8_lossy(name);
                out.extend_from_slice(env.get(key.as_ref()).map_or(&[][..], |v| v.as_bytes()));
            }
            j += width;
            i = j + 1;
        }
        j += 1;
    }
    out.extend_from_slice(&s[i.min(s.len())..]);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("HOME", "/root"), ("PATH", "/bin:/usr/bin"), ("1", "one")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expands_like_go() {
        let env = env();
        assert_eq!(expand("$HOME/x", &env), "/root/x");
        assert_eq!(expand("${HOME}x", &env), "/rootx");
        assert_eq!(expand("$UNSET/x", &env), "/x");
        assert_eq!(expand("a$", &env), "a$");
        assert_eq!(expand("$1 $$", &env), "one ");
        assert_eq!(expand("${}x", &env), "x");
        assert_eq!(expand("${HOME", &env), "HOME");
        assert_eq!(expand("$ x", &env), "$ x");
        assert_eq!(expand("no dollars", &env), "no dollars");
        assert_eq!(expand("echo $PATH;", &env), "echo /bin:/usr/bin;");
    }

    #[test]
    fn overlay_expands_each_value_against_the_base_only() {
        let var = |key: &str, value: &str| EnvVar {
            key: key.into(),
            value: value.into(),
            is_regex: false,
        };
        let layered = overlay(
            &env(),
            &[
                var("A", "a-$HOME"),
                var("HOME", "/home"),
                var("B", "$A|$HOME"),
            ],
        );
        assert_eq!(layered["A"], "a-/root");
        assert_eq!(layered["HOME"], "/home");
        assert_eq!(layered["B"], "|/root");
        assert_eq!(layered["PATH"], "/bin:/usr/bin");
    }
}
