//! hosts-entry: a createContainer hook (register with `--allow-rootfs=rw`) that adds the
//! `HOST=IP` pairs given as arguments to the container's `/etc/hosts`, creating the file if it
//! is missing and never adding a line twice.
//!
//! `hookhost create --type createContainer --allow-rootfs=rw --args hosts-entry,db=10.0.0.5 …`

use std::net::IpAddr;
use std::process::ExitCode;

use hookhost_guest::{Error, run};

const HOSTS: &str = "/etc/hosts";

fn main() -> ExitCode {
    run(|hook| {
        let entries = parse_entries(hook.extra_args())?;
        let current = hook.read_rootfs_file(HOSTS)?.unwrap_or_default();
        let updated = add_entries(&current, &entries);
        if updated != current {
            hook.write_rootfs_file(HOSTS, updated)?;
        }
        Ok(())
    })
}

#[derive(Debug, PartialEq)]
struct Entry {
    host: String,
    ip: IpAddr,
}

/// `HOST=IP` arguments; a malformed one fails the hook with a message naming it.
fn parse_entries(args: &[String]) -> Result<Vec<Entry>, Error> {
    args.iter().map(|arg| parse_entry(arg)).collect()
}

fn parse_entry(arg: &str) -> Result<Entry, Error> {
    let bad = || format!("hosts-entry: invalid argument {arg:?}: expected HOST=IP");
    let (host, ip) = arg.split_once('=').ok_or_else(bad)?;
    let valid_host = !host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('#');
    if !valid_host {
        return Err(bad().into());
    }
    let ip = ip.trim().parse().map_err(|_| bad())?;
    Ok(Entry {
        host: host.to_string(),
        ip,
    })
}

/// The hosts file with a line `IP<TAB>HOST` appended for each entry no existing line already
/// maps (same address, host among its names).
fn add_entries(current: &str, entries: &[Entry]) -> String {
    let mut text = current.to_string();
    for entry in entries {
        if has_entry(&text, entry) {
            continue;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{}\t{}\n", entry.ip, entry.host));
    }
    text
}

fn has_entry(text: &str, entry: &Entry) -> bool {
    text.lines().any(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let ip_matches = fields
            .next()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| ip == entry.ip);
        ip_matches && fields.any(|name| name == entry.host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookhost_guest::{Hook, State};

    fn entries(args: &[&str]) -> Vec<Entry> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_entries(&args).unwrap()
    }

    #[test]
    fn parses_pairs_and_refuses_bad_ones() {
        let parsed = entries(&["db=10.0.0.5", "v6=::1"]);
        assert_eq!(parsed[0].host, "db");
        assert_eq!(parsed[1].ip, "::1".parse::<IpAddr>().unwrap());
        for bad in ["db", "=1.2.3.4", "db=not-an-ip", "a b=1.2.3.4"] {
            let err = parse_entry(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn appends_missing_lines_only() {
        let current = "127.0.0.1\tlocalhost\n10.0.0.5 db db.local";
        let updated = add_entries(current, &entries(&["db=10.0.0.5", "cache=10.0.0.6"]));
        assert_eq!(updated, format!("{current}\n10.0.0.6\tcache\n"));
        assert_eq!(
            add_entries(&updated, &entries(&["cache=10.0.0.6"])),
            updated
        );
        assert_eq!(add_entries("", &entries(&["a=1.1.1.1"])), "1.1.1.1\ta\n");
    }

    #[test]
    fn writes_into_the_rootfs() {
        let rootfs = tempfile::tempdir().unwrap();
        let hook = Hook::new(State::default()).with_rootfs_dir(rootfs.path());
        let updated = add_entries("", &entries(&["db=10.0.0.5"]));
        hook.write_rootfs_file(HOSTS, &updated).unwrap();
        let text = std::fs::read_to_string(rootfs.path().join("etc/hosts")).unwrap();
        assert_eq!(text, "10.0.0.5\tdb\n");
    }
}
