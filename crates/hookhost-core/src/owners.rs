//! Conflicts between the precreate hooks of one container: who set each field first, as NRI
//! checks its plugins' adjustments.

use std::collections::HashMap;

use hookhost_hooks::diff::{Change, Field};

/// Who last set each field in one chain of precreate hooks, to find conflicts.
#[derive(Debug, Clone, Default)]
pub struct Owners(HashMap<Field, String>);

/// A later hook changed what an earlier one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The later hook's change.
    pub change: Change,
    pub earlier: String,
    pub later: String,
}

impl Owners {
    /// Records `hook`'s changes; the first one that changes what another hook set is a
    /// conflict, unless `hook` may adjust `all`.
    pub fn record(&mut self, hook: &str, changes: &[Change], all: bool) -> Result<(), Conflict> {
        for change in changes {
            match self.0.get(&change.field) {
                Some(earlier) if earlier != hook && !all => {
                    return Err(Conflict {
                        change: change.clone(),
                        earlier: earlier.clone(),
                        later: hook.to_string(),
                    });
                }
                _ => {}
            }
        }
        for change in changes {
            self.0.insert(change.field.clone(), hook.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hookhost_hooks::diff::ChangeKind;

    use super::*;

    fn change(field: Field, kind: ChangeKind) -> Change {
        Change { field, kind }
    }

    #[test]
    fn a_later_hook_changing_what_an_earlier_one_set_conflicts_unless_granted_all() {
        let gpu = [change(Field::Env("GPU_VISIBLE".into()), ChangeKind::Added)];
        let again = [change(
            Field::Env("GPU_VISIBLE".into()),
            ChangeKind::Changed,
        )];
        let mut owners = Owners::default();
        owners.record("first", &gpu, false).unwrap();
        owners.record("first", &again, false).unwrap();
        let conflict = owners.record("second", &again, false).unwrap_err();
        assert_eq!(conflict.earlier, "first");
        assert_eq!(conflict.later, "second");
        assert_eq!(conflict.change, again[0]);
        owners.record("admin", &again, true).unwrap();
        let other = [change(Field::Env("OTHER".into()), ChangeKind::Added)];
        owners.record("second", &other, false).unwrap();
    }
}
