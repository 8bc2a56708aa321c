//! The `--may-adjust` grant matcher over paths: a grant text, a mount destination (or device
//! path) and a mount source, one per line. Whatever they are, nothing panics, a path that is
//! not in normal form is never granted (unless by `all`), and a mount admitted with a host
//! source has a normal source.
#![no_main]

use hookhost_hooks::diff::{Change, ChangeKind, Field};
use hookhost_hooks::may_adjust::{MayAdjust, is_normal_path};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (Some(grant), Some(path), Some(source)) = (lines.next(), lines.next(), lines.next()) else {
        return;
    };
    let Ok(grants) = MayAdjust::parse_all(&[grant.to_string()]) else {
        return;
    };
    let _ = grants.to_string();
    for field in [Field::Mount(path.into()), Field::Device(path.into())] {
        if grants.allows(&field) && !grants.is_all() {
            assert!(is_normal_path(path), "{grant:?} allowed {path:?}");
        }
    }
    let after = json!({"mounts": [{"destination": path, "type": "bind", "source": source,
                                   "options": ["rbind", "ro"]}]});
    let change = Change {
        field: Field::Mount(path.into()),
        kind: ChangeKind::Added,
    };
    if grants.check(&change, &after).is_ok() && !grants.is_all() {
        assert!(is_normal_path(path), "{grant:?} admitted {path:?}");
        assert!(is_normal_path(source), "{grant:?} admitted source {source:?}");
    }
});
