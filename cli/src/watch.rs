//! `landlord watch`: progress as it happens. With a tenant, one progress bar per step of its latest run
//! (plain lines when the output is not a terminal), and an exit code a script can act on: 0 once the
//! tenant is active, 1 when it failed (or its purchase was refused, a change was rolled back, or it is
//! suspended or deleted), 2 when it waits for an operator, each with the reason; 3 when it cannot be
//! followed (NATS unreachable, not a tenant id, a configuration that does not load). A tenant already
//! there exits at once, also one whose events are older than the stream keeps (its status is read from
//! the control plane then). Without a tenant, every tenant's events, one line each, until interrupted.

use std::{collections::HashMap, io::IsTerminal, path::Path, process::ExitCode, time::Duration};

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use landlord_bus::Bus;
use landlord_protocol::{EventKind, ProgressEvent, TenantId, TenantStatus};
use landlord_worker::{WorkerConfig, store::Store};
use secrecy::ExposeSecret;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this tenant, with a progress bar per step (all tenants, one line per event, when absent).
    tenant: Option<String>,
    /// Kept for scripts written before `watch TENANT` exited by itself: it always does now.
    #[arg(long, hide = true)]
    until_done: bool,
    /// One line per event instead of progress bars, even on a terminal.
    #[arg(long)]
    plain: bool,
}

/// How a watch of one tenant ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Active,
    Failed(String),
    AwaitingOperator(String),
}

impl Ending {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Active => ExitCode::SUCCESS,
            Self::Failed(_) => ExitCode::from(1),
            Self::AwaitingOperator(_) => ExitCode::from(2),
        }
    }
}

/// Whether `event` ends a watch, and how. `has_tenant`: a status of the tenant was seen already, so a
/// rejected command (a suspend sent too early) is about that command, not about the tenant.
pub fn ending(event: &ProgressEvent, has_tenant: bool) -> Option<Ending> {
    let reason =
        || event.error.as_ref().map(|e| e.message.clone()).or_else(|| event.message.clone()).unwrap_or_default();
    match (event.kind, event.status) {
        (EventKind::PurchaseRefused, _) => Some(Ending::Failed(reason())),
        (EventKind::Rejected, _) if !has_tenant => Some(Ending::Failed(reason())),
        // Active again after a change that failed (a move rolled back): the change did not happen.
        (EventKind::StatusChanged, Some(TenantStatus::Active)) if event.error.is_some() => {
            Some(Ending::Failed(reason()))
        }
        (EventKind::StatusChanged, Some(TenantStatus::Active)) => Some(Ending::Active),
        (EventKind::StatusChanged, Some(TenantStatus::Failed)) => Some(Ending::Failed(reason())),
        (EventKind::StatusChanged, Some(TenantStatus::AwaitingOperator)) => Some(Ending::AwaitingOperator(reason())),
        // Not coming to life: say so rather than wait for ever.
        (EventKind::StatusChanged, Some(status @ (TenantStatus::Suspended | TenantStatus::Deleted))) => {
            Some(Ending::Failed(format!("the tenant is {}", status.as_str())))
        }
        (EventKind::StatusChanged, Some(TenantStatus::Offboarding)) if event.error.is_some() => {
            Some(Ending::Failed(reason()))
        }
        _ => None,
    }
}

/// Exit code when the watch cannot be made: not the tenant's doing, so a script can tell it from "failed".
const CANNOT_WATCH: u8 = 3;

pub async fn run(config: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let cfg = match landlord_worker::WorkerConfig::load(config) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("cannot read the configuration: {e:#}");
            return Ok(ExitCode::from(CANNOT_WATCH));
        }
    };
    let tenant = match args.tenant.as_deref().map(TenantId::parse).transpose() {
        Ok(tenant) => tenant,
        Err(e) => {
            eprintln!("not a tenant id: {e}");
            return Ok(ExitCode::from(CANNOT_WATCH));
        }
    };
    let bus = match Bus::connect_with(&cfg.nats_settings()).await {
        Ok(bus) => bus,
        Err(e) => {
            eprintln!("cannot reach NATS: {e}");
            return Ok(ExitCode::from(CANNOT_WATCH));
        }
    };
    let Some(tenant) = tenant else {
        let mut events = match bus.progress(None).await {
            Ok(events) => Box::pin(events),
            Err(e) => {
                eprintln!("cannot follow the progress events: {e}");
                return Ok(ExitCode::from(CANNOT_WATCH));
            }
        };
        while let Some(ev) = events.next().await {
            println!("{}", line(&ev));
        }
        // Only interrupting ends a watch of every tenant; a stream that ends is NATS failing.
        eprintln!("the progress stream ended (NATS failed repeatedly)");
        return Ok(ExitCode::from(CANNOT_WATCH));
    };
    let bars = !args.plain && std::io::stdout().is_terminal();
    let ending = match follow(&bus, &cfg, &tenant, bars).await {
        Ok(ending) => ending,
        Err(e) => {
            eprintln!("cannot follow tenant {tenant}: {e:#}");
            return Ok(ExitCode::from(CANNOT_WATCH));
        }
    };
    match &ending {
        Ending::Active => println!("tenant {tenant} is active"),
        Ending::Failed(reason) => eprintln!("tenant {tenant} failed: {reason}"),
        Ending::AwaitingOperator(reason) => eprintln!("tenant {tenant} waits for an operator: {reason}"),
    }
    Ok(ending.exit_code())
}

/// Follows `tenant`'s events until one ends the watch. History is replayed first; if it ends with the
/// tenant already settled, that is the answer, unless a command about the tenant waits (one just sent,
/// or being worked on): then the watch goes on until that command's run ends, or until it has left the
/// queue without changing anything (a repeated suspend, say). When history does not settle it and no
/// command waits, the control plane says whether the tenant settled long ago (the event that said so is
/// past the stream's retention, while later ones, such as reminders, are kept).
async fn follow(bus: &Bus, cfg: &WorkerConfig, tenant: &TenantId, bars: bool) -> anyhow::Result<Ending> {
    let caught_up_at = bus.last_progress(tenant).await?;
    let mut waiting = bus.commands_waiting(tenant).await? > 0;
    let mut events = Box::pin(bus.progress_after(Some(tenant), None).await?);
    let mut view = Steps::new(bars);
    if caught_up_at.is_none()
        && !waiting
        && let Some(end) = ask_control_plane(cfg, tenant, true).await
    {
        return Ok(view.done(end));
    }
    // How the last run in history ended, and which run that was.
    let mut settled: Option<(Ending, Option<Uuid>)> = None;
    let mut has_tenant = false;
    let mut caught_up = caught_up_at.is_none();
    let mut recheck = tokio::time::interval(Duration::from_secs(1));
    loop {
        let (seq, ev) = tokio::select! {
            next = events.next() => next.ok_or_else(|| anyhow::anyhow!("the progress stream ended"))?,
            _ = recheck.tick(), if caught_up && waiting => {
                waiting = bus.commands_waiting(tenant).await? > 0;
                if !waiting {
                    // The command left the queue: its run ended (its ending is in the control plane even if
                    // its event is still on the way), or it changed nothing.
                    if let Some((end, _)) = settled.take() {
                        return Ok(view.done(end));
                    }
                    if let Some(end) = ask_control_plane(cfg, tenant, false).await {
                        return Ok(view.done(end));
                    }
                }
                continue;
            }
        };
        view.show(&ev);
        let history = caught_up_at.is_some_and(|last| seq <= last);
        let end = ending(&ev, has_tenant);
        has_tenant |= ev.kind == EventKind::StatusChanged;
        match end {
            Some(end) if !history => return Ok(view.done(end)),
            Some(end) => settled = Some((end, ev.run_id)),
            // Anything of another run after a settled one (a retry, a plan change): not settled any more.
            None if ev.run_id.is_some() && settled.as_ref().is_some_and(|(_, run)| *run != ev.run_id) => {
                settled = None;
            }
            None => {}
        }
        caught_up |= Some(seq) == caught_up_at;
        if history && Some(seq) == caught_up_at && !waiting {
            if let Some((end, _)) = settled.take() {
                return Ok(view.done(end));
            }
            if let Some(end) = ask_control_plane(cfg, tenant, false).await {
                return Ok(view.done(end));
            }
        }
    }
}

/// [`settled_in_control_plane`], saying on stderr why the watch goes on when it does not settle the
/// watch. `nothing_yet`: the stream holds no event of the tenant.
async fn ask_control_plane(cfg: &WorkerConfig, tenant: &TenantId, nothing_yet: bool) -> Option<Ending> {
    match settled_in_control_plane(cfg, tenant).await {
        Ok(Some(end)) => Some(end),
        Ok(None) if nothing_yet => {
            eprintln!("no event of tenant {tenant} yet: waiting for its first (Ctrl-C to stop)");
            None
        }
        Ok(None) => None,
        Err(e) if nothing_yet => {
            eprintln!(
                "no event of tenant {tenant} yet, and the control plane cannot say more ({e:#}): waiting for its first (Ctrl-C to stop)"
            );
            None
        }
        Err(e) => {
            eprintln!("the control plane cannot say how tenant {tenant} stands ({e:#}): following its events");
            None
        }
    }
}

/// How `tenant` stands in the control plane when that settles a watch; `None` when the tenant is not
/// there (a purchase not taken yet) or still between two states.
async fn settled_in_control_plane(cfg: &WorkerConfig, tenant: &TenantId) -> anyhow::Result<Option<Ending>> {
    let read = async {
        let store = Store::connect_existing(cfg.database_url.expose_secret()).await?;
        anyhow::Ok(store.tenant(tenant).await?)
    };
    let Some(row) = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 5 s"))??
    else {
        return Ok(None);
    };
    let reason = || row.last_error.clone().unwrap_or_else(|| format!("the tenant is {}", row.status));
    Ok(match TenantStatus::parse(&row.status) {
        Some(TenantStatus::Active) => Some(Ending::Active),
        Some(TenantStatus::Failed) => Some(Ending::Failed(reason())),
        Some(TenantStatus::AwaitingOperator) => Some(Ending::AwaitingOperator(reason())),
        Some(status @ (TenantStatus::Suspended | TenantStatus::Deleted)) => {
            Some(Ending::Failed(format!("the tenant is {}", status.as_str())))
        }
        _ => None,
    })
}

/// One bar per step of the run shown, or plain lines.
struct Steps {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    run: Option<Uuid>,
    draw: bool,
}

impl Steps {
    fn new(draw: bool) -> Self {
        let target = if draw { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        Self { multi: MultiProgress::with_draw_target(target), bars: HashMap::new(), run: None, draw }
    }

    fn show(&mut self, ev: &ProgressEvent) {
        if !self.draw {
            println!("{}", line(ev));
            return;
        }
        // A new run starts a new set of bars: the steps of an earlier run are history.
        if ev.run_id.is_some() && ev.run_id != self.run {
            self.run = ev.run_id;
            for bar in self.bars.values() {
                bar.finish_and_clear();
            }
            self.bars.clear();
        }
        let Some(step) = ev.step.clone() else {
            if let Some(message) = &ev.message {
                self.multi.println(format!("· {message}")).ok();
            }
            return;
        };
        let bar = self.bars.entry(step.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("{spinner} {prefix:<16} {wide_msg}").expect("template"));
            bar.set_prefix(step);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let took = ev.duration_ms.map(|ms| format!(" ({ms} ms)")).unwrap_or_default();
        let attempt = ev.attempt.filter(|a| *a > 1).map(|a| format!(" attempt {a}")).unwrap_or_default();
        let error = ev.error.as_ref().map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_default();
        match ev.kind {
            EventKind::StepStarted => bar.set_message(format!("running{attempt}")),
            EventKind::StepRetrying => bar.set_message(format!("retrying{attempt} after {error}")),
            EventKind::StepSucceeded => bar.finish_with_message(format!("✓ done{took}")),
            EventKind::StepSkipped => bar.finish_with_message(format!("– skipped{took}")),
            EventKind::StepUndone => bar.finish_with_message(format!("↶ undone{took}")),
            EventKind::StepFailed => bar.abandon_with_message(format!("✗ {error}")),
            _ => {}
        }
    }

    fn done(self, end: Ending) -> Ending {
        for bar in self.bars.values().filter(|b| !b.is_finished()) {
            bar.abandon();
        }
        end
    }
}

fn line(ev: &ProgressEvent) -> String {
    let mut out = format!(
        "{}  {:<15}",
        ev.at.format("%H:%M:%S%.3f"),
        serde_json::to_value(ev.kind).expect("an event kind serializes").as_str().unwrap_or("")
    );
    if let Some(step) = &ev.step {
        out.push_str(&format!(" {step:<16}"));
    }
    if let Some(attempt) = ev.attempt {
        out.push_str(&format!(" attempt {attempt}"));
    }
    if let Some(ms) = ev.duration_ms {
        out.push_str(&format!(" {ms} ms"));
    }
    if let Some(status) = ev.status {
        out.push_str(&format!(" [{}]", status.as_str()));
    }
    if let Some(m) = &ev.message {
        out.push_str(&format!("  {m}"));
    }
    if let Some(e) = &ev.error {
        out.push_str(&format!("  error {}: {}{}", e.code, e.message, if e.retryable { " (will retry)" } else { "" }));
    }
    out
}
