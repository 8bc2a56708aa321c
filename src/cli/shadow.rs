//! Shadow hooks: `create --shadow-of`, `promote`, and the agreement view of `stats`.

use std::process::ExitCode;

use clap::Args;

use hookhost_core::events;
use hookhost_core::shadow::Agreement;
use hookhost_hooks::define::Definition;
use hookhost_hooks::hook::Hook;
use hookhost_hooks::registry::{Registry, RegistryError};
use hookhost_hooks::shadow::{self, DEFAULT_BUDGET_MS, MAX_BUDGET_MS};

use super::Cli;

/// `create`'s flags for a shadow hook.
#[derive(Debug, Args)]
pub struct ShadowFlags {
    /// Register a shadow of the WebAssembly hook ENFORCED: it runs after ENFORCED wherever
    /// ENFORCED runs, on the same input, with ENFORCED's stages, conditions and grants (a
    /// writable directory as a scratch copy), and no effect on the container: its verdict and
    /// edits are only recorded (`hookhost events`, `hookhost stats --shadows`). `hookhost
    /// promote NAME` makes it the enforced hook
    #[arg(long, value_name = "ENFORCED")]
    shadow_of: Option<String>,
    /// With --shadow-of: how long the shadow may delay the container, in milliseconds (1 to
    /// 10000); a run that reaches it is stopped and recorded as skipped [default: 200]
    #[arg(long, value_name = "MS", requires = "shadow_of")]
    shadow_budget: Option<u64>,
}

const _: () = assert!(DEFAULT_BUDGET_MS == 200 && MAX_BUDGET_MS == 10_000);

impl ShadowFlags {
    /// The enforced hook, checked, with what the definition takes from it; none for a hook
    /// that is no shadow.
    pub fn enforced(
        &self,
        registry: &Registry,
        def: &mut Definition,
    ) -> anyhow::Result<Option<Hook>> {
        let Some(of) = &self.shadow_of else {
            return Ok(None);
        };
        let enforced = shadow::enforced(registry, &def.name, of)?;
        let own = registry.shadows_of(&def.name)?;
        if !own.is_empty() {
            return Err(RegistryError::HasShadows {
                name: def.name.clone(),
                shadows: own.into_iter().map(|h| h.name).collect(),
            }
            .into());
        }
        if let Some(ms) = self.shadow_budget {
            shadow::check_budget(ms)?;
        }
        shadow::inherit(def, &enforced)?;
        Ok(Some(enforced))
    }

    /// `hook` made a shadow of `enforced`, if there is one.
    pub fn make(&self, hook: Hook, enforced: Option<&Hook>) -> anyhow::Result<Hook> {
        Ok(match enforced {
            Some(enforced) => shadow::make(hook, enforced, self.shadow_budget)?,
            None => hook,
        })
    }
}

/// Make a shadow hook the enforced one.
///
/// The hook it shadows keeps its name, stages, conditions, grants and failure policy, and
/// takes the shadow's module, args, env, timeout and limits; then the shadow's entry is
/// removed. The enforced hook's entry is replaced with one atomic rename: a container being
/// created gets the old hook or the new one, never neither. Containers already created keep
/// the hooks they were created with.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    hookhost create --shadow-of policy policy-v2 policy-v2.wasm\n  \
    hookhost stats --shadows        # policy-v2 agreed with policy on every run?\n  \
    hookhost promote policy-v2      # policy now runs policy-v2's module")]
pub struct PromoteArgs {
    /// Name of the shadow hook
    name: String,
}

pub fn promote(cli: &Cli, args: &PromoteArgs) -> anyhow::Result<ExitCode> {
    let hook = cli.registry()?.promote(&args.name)?;
    println!("{}", hook.name);
    Ok(ExitCode::SUCCESS)
}

/// The agreement of each shadow with its enforced hook, as `hookhost stats --shadows` prints it.
pub fn print_agreement(rows: &[Agreement], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<24} {:>8} {:>12} {:>10} {:>10} {:>8} {:>12}",
        "SHADOW",
        "OF",
        "RUNS",
        "SAME-VERDICT",
        "SAME-EDITS",
        "DIFFERING",
        "SKIPPED",
        "REFUSED-MORE"
    );
    for r in rows {
        println!(
            "{:<24} {:<24} {:>8} {:>12} {:>10} {:>10} {:>8} {:>12}",
            events::text_field(&r.shadow),
            events::text_field(&r.of),
            r.runs,
            r.same_verdict,
            r.same_edits,
            r.differing,
            r.skipped,
            r.refused_more,
        );
    }
    Ok(())
}
