//! The `kidsafe-dns` command: parse arguments, set up logging, run a subcommand, map the
//! outcome to an exit status.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use kidsafe_dns::lists::compile::{InlineRules, ListSource, Progress, compile};
use kidsafe_dns::lists::matcher::Decision;
use kidsafe_dns::lists::parse::Format;
use kidsafe_dns::lists::rule::Scope;
use kidsafe_dns::lists::{Blocklist, manifest};
use kidsafe_dns::{app, config};

#[derive(Parser)]
#[command(
    name = "kidsafe-dns",
    version,
    about = "DNS filtering resolver that keeps child-unsafe domains out of reach"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the resolver.
    Serve {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Compile lists into a memory-mapped FST (and its manifest beside it).
    Compile {
        /// A block list: CATEGORY=PATH (plain or .gz, format sniffed). Repeatable.
        #[arg(long = "list", value_name = "CATEGORY=PATH")]
        lists: Vec<String>,
        /// An allowlist file. Repeatable.
        #[arg(long = "allow", value_name = "PATH")]
        allows: Vec<PathBuf>,
        /// Also compile the sources of this config file (and write to its lists.compiled
        /// unless --out is given).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output FST path.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print every rejected line of each source, not only the first 5.
        #[arg(long)]
        show_rejected: bool,
    },
    /// Show the verdict for names: is this site blocked, and by which rule? A URL is
    /// reduced to its host; with --config, every client group's verdict follows.
    /// Exit status 0 = all allowed, 1 = some blocked (by a group) or refused, 2 = an
    /// invalid name or another error.
    Check {
        /// Compiled FST to check against.
        #[arg(long, conflicts_with = "config")]
        blocklist: Option<PathBuf>,
        /// Use the compiled list of this config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Judge as this client address would be (its group, categories, schedule);
        /// needs --config.
        #[arg(long, requires = "config")]
        client: Option<std::net::IpAddr>,
        /// Judge as the device with this ClientID (DoH path, TLS name) would be; needs
        /// --config (the address is --client, else 127.0.0.1).
        #[arg(long, requires = "config")]
        client_id: Option<String>,
        /// Judge as the device with this MAC address (from a trusted forwarder) would be;
        /// needs --config (the address is --client, else 127.0.0.1).
        #[arg(long, requires = "config")]
        mac: Option<String>,
        /// Names (or URLs) to check.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show the serving list and each source's last success, last error, version
    /// (ETag/serial), entries and refused updates, from the state files the server keeps.
    Status {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file as `serve` would, short of binding sockets: the file, the lists
    /// (compiled into a scratch directory), the groups' own lists, the SafeSearch data and
    /// the TLS files. Exit status 0 = ok, 2 = `serve` would refuse it.
    CheckConfig {
        /// Config file (TOML).
        #[arg(long = "config", short, value_name = "FILE", conflicts_with = "file")]
        config: Option<PathBuf>,
        /// Config file (TOML), the same as --config.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

fn init_logging() {
    // Nothing of ours logs per query. The hickory libraries stay at WARN so that none of
    // them records who asked what unless an operator asks for it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn".into());
    // Colours only for a person at a terminal (and not with NO_COLOR set): journald, docker
    // logs and files get plain text, never escape codes.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Compile {
            lists,
            allows,
            config,
            out,
            show_rejected,
        } => compile_cmd(lists, allows, config, out, show_rejected),
        Command::Check {
            blocklist,
            config,
            client,
            client_id,
            mac,
            names,
        } => {
            if client.is_none() && client_id.is_none() && mac.is_none() {
                check(blocklist, config, names)
            } else {
                who(client, client_id.as_deref(), mac.as_deref())
                    .and_then(|who| check_client(config, who, names))
            }
        }
        Command::Status { config } => config::load(&config)
            .map(|c| {
                kidsafe_dns::feed::status::print(&c.lists);
                let now = kidsafe_dns::clock::now_unix();
                print!("{}", app::reload::status_text(&c, now));
                ExitCode::SUCCESS
            })
            .map_err(Into::into),
        Command::CheckConfig { config, file } => check_config(config.or(file)),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", report(&error));
            ExitCode::from(2)
        }
    }
}

/// `error` and its causes joined by `: `, like `{:#}`, but a cause whose text its parent
/// already ends with is not said twice (our error types print their source themselves).
fn report(error: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut parent = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parent.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        parent = text;
    }
    out
}

/// `check-config`: [`app::check_config`], then one line saying what was checked.
fn check_config(path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let Some(path) = path else {
        bail!("give the config file: check-config --config FILE");
    };
    let c = config::load(&path)?;
    let checked = app::check_config(&c)?;
    println!(
        "{}: ok ({} listen addresses, {} upstreams, {} lists, {} entries{}, {} groups)",
        c.path.display(),
        c.server.listen.len(),
        c.upstream.servers.len(),
        c.lists.sources.len(),
        checked.entries,
        if checked.compiled { " compiled" } else { "" },
        checked.groups,
    );
    Ok(ExitCode::SUCCESS)
}

fn serve(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = config::load(&path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.worker_threads())
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stop = app::ShutdownSignal::install();
        let running = app::start(config).await?;
        stop.wait().await;
        running.stop().await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn compile_cmd(
    lists: Vec<String>,
    allows: Vec<PathBuf>,
    config_path: Option<PathBuf>,
    out: Option<PathBuf>,
    show_rejected: bool,
) -> anyhow::Result<ExitCode> {
    let mut sources = Vec::new();
    let mut default_out = None;
    if let Some(path) = config_path {
        let config = config::load(&path)?;
        sources.extend(config.lists.available_sources());
        default_out = Some(config.lists.compiled.clone());
    }
    for spec in &lists {
        let Some((category, path)) = spec.split_once('=') else {
            bail!("--list {spec}: expected CATEGORY=PATH, e.g. --list adult=lists/adult.txt");
        };
        if category.is_empty() || path.is_empty() {
            bail!("--list {spec}: expected CATEGORY=PATH, e.g. --list adult=lists/adult.txt");
        }
        sources.push(ListSource {
            category: Some(category.to_owned()),
            path: path.into(),
            format: Format::Auto,
        });
    }
    sources.extend(allows.into_iter().map(|path| ListSource {
        category: None,
        path,
        format: Format::Auto,
    }));
    let Some(out) = out.or(default_out) else {
        bail!("--out FILE is required (or --config with lists.compiled)");
    };
    let started = Instant::now();
    let manifest = compile(&sources, &InlineRules::default(), &out, &mut |p| match p {
        Progress::SourceDone(src, r) => {
            let rejected: Vec<String> = r
                .parse
                .rejected
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            eprintln!(
                "[{:>6.2}s] {} {} ({}, {} lines): {} entries, rejected: {}, unsupported: {}",
                started.elapsed().as_secs_f64(),
                src.category.as_deref().unwrap_or("allow"),
                src.path.display(),
                r.parse.format,
                r.parse.lines,
                r.parse.accepted,
                if rejected.is_empty() {
                    "none".into()
                } else {
                    rejected.join(" ")
                },
                r.parse.unsupported
            );
            print_rejected(src, r, show_rejected);
        }
        Progress::Sorting { keys } => eprintln!(
            "[{:>6.2}s] sorting {keys} keys",
            started.elapsed().as_secs_f64()
        ),
        Progress::Writing { entries } => {
            eprintln!(
                "[{:>6.2}s] writing {entries} distinct entries",
                started.elapsed().as_secs_f64()
            )
        }
    })?;
    let per_name = manifest.fst_bytes as f64 / manifest.entries.max(1) as f64;
    println!(
        "wrote {} ({} entries, {} bytes, {:.1} B/entry, serial {}) in {:.2}s; manifest {}",
        out.display(),
        manifest.entries,
        manifest.fst_bytes,
        per_name,
        manifest.serial,
        started.elapsed().as_secs_f64(),
        manifest::path_for(&out).display()
    );
    for (category, n) in &manifest.entries_per_category {
        println!("  {category}: {n}");
    }
    if manifest.allow_entries > 0 {
        println!("  allow: {}", manifest.allow_entries);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the rejected lines of one source as `file:line: reason: text` (with a hint for
/// URLs): the first few, or all with `--show-rejected` (read again, as the compile keeps
/// only the first few).
fn print_rejected(src: &ListSource, report: &kidsafe_dns::lists::source::SourceReport, all: bool) {
    let total = report.parse.rejected_total();
    if total == 0 {
        return;
    }
    let mut lines = report.parse.rejected_lines.clone();
    if all && (lines.len() as u64) < total {
        match kidsafe_dns::lists::source::rejected_lines(&src.path, src.format) {
            Ok(every) => lines = every,
            Err(error) => eprintln!("  (cannot read the rejected lines again: {error})"),
        }
    }
    for l in &lines {
        let hint = l.hint().map(|h| format!(" ({h})")).unwrap_or_default();
        eprintln!(
            "  {}:{}: {}: {}{hint}",
            src.path.display(),
            l.line,
            l.reason,
            l.text
        );
    }
    let left = total.saturating_sub(lines.len() as u64);
    if left > 0 {
        eprintln!("  ... and {left} more rejected lines (--show-rejected lists them all)");
    }
}

/// The compiled list of `config`, so `check` answers for the lists as configured. On a
/// fresh machine (no compiled list yet) it is compiled and installed first, as `serve`
/// does. When the sources changed since, they are compiled into a temporary file for this
/// check only: the server's compiled list is replaced by the server alone (its feed
/// pipeline and guards, on SIGHUP or `POST /v1/reload`).
fn open_configured(config: &config::Config) -> anyhow::Result<Blocklist> {
    use kidsafe_dns::feed::install::{Against, build_list, open_or_build};
    let path = &config.lists.compiled;
    let lists = &config.lists;
    if !path.exists() {
        let (list, built) = open_or_build(lists, None).context("compiling the configured lists")?;
        if let Some(m) = built {
            eprintln!(
                "compiled the configured lists first: {} entries into {}",
                m.entries,
                path.display()
            );
        }
        return Ok(list);
    }
    if !app::needs_compile(lists) {
        return Blocklist::open(path).with_context(|| format!("loading {}", path.display()));
    }
    let dir = tempfile::tempdir().context("a temporary directory for a fresh compile")?;
    let fresh = dir.path().join("check.fst");
    let against = Against {
        serving: None,
        min_keep: 0.0,
        force: true,
    };
    let inline = kidsafe_dns::lists::compile::InlineRules::default();
    let m = build_list(
        "the configured lists",
        &lists.available_sources(),
        &inline,
        &fresh,
        against,
    )
    .context("compiling the configured lists")?;
    eprintln!(
        "the sources changed since {} was compiled: checked against a fresh compile of them ({} entries); the server's list is left as it is until it reloads (SIGHUP)",
        path.display(),
        m.entries
    );
    // The mapping stays valid after the temporary directory is removed.
    Blocklist::open(&fresh).with_context(|| format!("loading {}", fresh.display()))
}

/// What `check` found, over all names: the exit status.
#[derive(Default)]
struct Tally {
    blocked: bool,
    invalid: bool,
}

impl Tally {
    /// 2 when a name was invalid, else 1 when one was blocked (or refused), else 0.
    fn exit_code(&self) -> ExitCode {
        if self.invalid {
            ExitCode::from(2)
        } else if self.blocked {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The host `input` asks about, or `None` after printing it as INVALID. A URL is reduced
/// to its host, and the returned note says so.
fn target(input: &str, tally: &mut Tally) -> Option<(String, String)> {
    match kidsafe_dns::admin::check::target(input) {
        Ok(t) => {
            let note = if t.from_url {
                format!("\t(host of {input})")
            } else {
                String::new()
            };
            Some((t.name, note))
        }
        Err(reason) => {
            tally.invalid = true;
            println!("{input:?}\tINVALID\t{reason}");
            None
        }
    }
}

/// One group's verdict on `name`: whether it blocks, and the columns to print.
fn group_verdict(
    policy: &kidsafe_dns::policy::decide::Policy,
    group: &kidsafe_dns::policy::decide::Group,
    list: &Blocklist,
    name: &str,
) -> (bool, String) {
    use kidsafe_dns::policy::decide::Outcome;
    let labels = || name.split('.').map(str::as_bytes);
    match policy.decide(group, list, labels) {
        Outcome::Blocked(v) => {
            let cats = list.manifest().category_names(v.categories).join(",");
            let rule = v.rule.map(|r| r.name).unwrap_or_default();
            (true, format!("BLOCKED\t{cats}\trule {rule}"))
        }
        Outcome::Filtered(v) => {
            let rule = v.rule.map(|r| r.name).unwrap_or_default();
            (true, format!("BLOCKED\tdeny list\trule {rule}"))
        }
        Outcome::Service(b) => {
            let rule = b.verdict.rule.map(|r| r.name).unwrap_or_default();
            (true, format!("BLOCKED\tservice {}\trule {rule}", b.id))
        }
        Outcome::Bypass(b) => {
            let rule = b.verdict.rule.map(|r| r.name).unwrap_or_default();
            (
                true,
                format!("BLOCKED\tbypass {}\trule {rule}", b.kind.as_str()),
            )
        }
        Outcome::UnsafeSearch(v) => {
            let rule = v.rule.map(|r| r.name).unwrap_or_default();
            (true, format!("BLOCKED\tunsafe search\trule {rule}"))
        }
        Outcome::SafeSearch(target) => (false, format!("ALLOWED\tSafeSearch → {target}")),
        Outcome::Forward => (false, "ALLOWED\tforwarded".to_owned()),
    }
}

/// The client `check --client/--client-id/--mac` asks as.
fn who(
    ip: Option<std::net::IpAddr>,
    client_id: Option<&str>,
    mac: Option<&str>,
) -> anyhow::Result<kidsafe_dns::policy::Client> {
    use kidsafe_dns::policy::client::{ClientId, Mac};
    let mut who = kidsafe_dns::policy::Client::from_addr(
        ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    );
    if let Some(id) = client_id {
        who.client_id = Some(ClientId::parse(id).with_context(|| format!("--client-id {id:?}"))?);
    }
    if let Some(mac) = mac {
        who.mac = Some(Mac::parse(mac).context("--mac")?);
    }
    Ok(who)
}

/// `check --config FILE --client IP` (or `--client-id ID`, `--mac MAC`): the verdict the
/// resolver would give that client, and the profile (group) that decided, and by what.
fn check_client(
    config_path: Option<PathBuf>,
    who: kidsafe_dns::policy::Client,
    names: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let ip = who.addr;
    use kidsafe_dns::policy::decide::{Admission, system_clock};
    let Some(path) = config_path else {
        bail!("--client needs --config FILE");
    };
    let config = config::load(&path)?;
    let list = open_configured(&config)?;
    // The profiles stored through the API decide as in the resolver.
    let config = app::serving_config(&config)?;
    // The groups' own lists are compiled for this check only, never over the server's.
    let groups = tempfile::tempdir().context("a temporary directory for the group lists")?;
    let policy = app::build_policy(&config, system_clock(), Some(groups.path()))?;
    let refused = matches!(policy.admit(ip), Admission::NotAllowed(_));
    let (index, by) = policy.choose(&who);
    let group = &policy.groups()[index];
    let by = by.as_str();
    let mut tally = Tally::default();
    for input in &names {
        let Some((name, note)) = target(input, &mut tally) else {
            continue;
        };
        if refused {
            tally.blocked = true;
            println!("{name}\tREFUSED\tclient {ip} is outside server.allow_clients{note}");
            continue;
        }
        let (blocked, verdict) = group_verdict(&policy, group, &list, &name);
        tally.blocked |= blocked;
        println!("{name}\t{verdict}\tprofile {} (by {by}){note}", group.name);
    }
    Ok(tally.exit_code())
}

/// `check NAME...`: the shared list's verdict on each name and, with a config that has
/// client groups, each group's (as `/v1/check` reports them).
fn check(
    blocklist: Option<PathBuf>,
    config_path: Option<PathBuf>,
    names: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let (list, policy) = match (blocklist, config_path) {
        (Some(path), _) => (
            Blocklist::open(&path).with_context(|| format!("loading {}", path.display()))?,
            None,
        ),
        (None, Some(c)) => {
            let config = config::load(&c)?;
            let list = open_configured(&config)?;
            let config = app::serving_config(&config)?;
            // The groups' own lists are compiled for this check only, never over the server's.
            let groups =
                tempfile::tempdir().context("a temporary directory for the group lists")?;
            let clock = kidsafe_dns::policy::decide::system_clock();
            let policy = app::build_policy(&config, clock, Some(groups.path()))?;
            (list, Some(policy))
        }
        (None, None) => bail!("give --blocklist FILE or --config FILE"),
    };
    // Only named groups are worth a line each: the implicit `default` is the list itself.
    let policy = policy.filter(|p| p.groups().iter().any(|g| g.named));
    let mut tally = Tally::default();
    for input in &names {
        let Some((name, note)) = target(input, &mut tally) else {
            continue;
        };
        let v = list.lookup(&name);
        let rule = v.rule.as_ref().map(|r| {
            let how = match r.scope {
                Scope::Exact => "exact",
                Scope::Subtree => "with subdomains",
            };
            format!("rule {} ({how})", r.name)
        });
        match v.decision {
            Decision::Blocked => {
                tally.blocked = true;
                let cats = list.manifest().category_names(v.categories).join(",");
                println!(
                    "{name}\tBLOCKED\t{cats}\t{}{note}",
                    rule.unwrap_or_default()
                );
            }
            Decision::Allowed => {
                println!(
                    "{name}\tALLOWED\tallowlist\t{}{note}",
                    rule.unwrap_or_default()
                )
            }
            Decision::NotListed => println!("{name}\tALLOWED\tnot listed{note}"),
        }
        let Some(policy) = &policy else { continue };
        for group in policy.groups() {
            let (blocked, verdict) = group_verdict(policy, group, &list, &name);
            tally.blocked |= blocked;
            println!("  profile {}\t{verdict}", group.name);
        }
    }
    Ok(tally.exit_code())
}
