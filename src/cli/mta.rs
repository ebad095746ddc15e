//! `listkeeper mta check postfix|exim`: read the MTA's live configuration (`postconf -n`,
//! `postconf -M`, `postmap -q`; `exim -bP`, `exim -bt`, `exim -bh`) and say, line by line,
//! what is wrong or missing for listkeeper; exit 0 only when nothing is.
//!
//! The judgement is in I/O-free functions over what the MTA's tools printed, so that it is
//! unit-tested; `run` only runs the tools.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use super::{load_config, ConfigArg};
use crate::config::{Config, Listen};
use crate::registry::Registry;

/// Which MTA.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mta {
    /// Postfix (`postconf`, `postmap`).
    Postfix,
    /// Exim 4 (`exim4`/`exim`).
    Exim,
}

/// `listkeeper mta ...`
#[derive(clap::Subcommand, Debug)]
pub enum MtaCommand {
    /// Check the MTA's live configuration against listkeeper's; exit 1 when something is
    /// wrong or missing.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// The MTA.
        mta: Mta,
        /// The MTA's configuration: Postfix's config directory (`postconf -c`), Exim's
        /// configuration file (`exim -C`). Default: the MTA's own.
        #[arg(long, value_name = "PATH")]
        mta_config: Option<PathBuf>,
        /// The MTA's tool: the directory of `postconf`/`postmap`, or the `exim` binary.
        /// Default: found in PATH (`exim4`, else `exim`).
        #[arg(long, value_name = "PATH")]
        tool: Option<PathBuf>,
    },
}

/// One line of the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Right (true), or wrong/missing (false).
    pub ok: bool,
    /// What was checked and what was found.
    pub text: String,
}

fn good(text: impl Into<String>) -> Finding {
    Finding {
        ok: true,
        text: text.into(),
    }
}
fn bad(text: impl Into<String>) -> Finding {
    Finding {
        ok: false,
        text: text.into(),
    }
}

/// What listkeeper expects of the MTA, from its own configuration and lists.
#[derive(Debug, Clone)]
pub struct Want {
    /// The domains of the lists.
    pub domains: Vec<String>,
    /// One list address (for lookups that need a whole address).
    pub sample: Option<String>,
    /// `server.recipient_delimiter`.
    pub delimiter: char,
    /// `server.lmtp_listen`.
    pub lmtp: Vec<Listen>,
    /// `reinject.target`.
    pub reinject: String,
    /// `routing.socketmap_socket`.
    pub socketmap: Option<PathBuf>,
}

impl Want {
    fn from(config: &Config, reg: &Registry) -> Want {
        let lists = reg.active();
        let mut domains: Vec<String> = lists
            .iter()
            .map(|l| l.address.domain().to_lowercase())
            .collect();
        domains.sort();
        domains.dedup();
        Want {
            domains,
            sample: lists.first().map(|l| l.key()),
            delimiter: config.server.recipient_delimiter,
            lmtp: config.server.lmtp_listen.clone(),
            reinject: config.reinject.target.clone(),
            socketmap: config.routing.socketmap_socket.clone(),
        }
    }

    /// Does a next hop (`unix:/path`, `inet:host:port`, `/path`, `host:port`) name one of the
    /// LMTP listeners?
    fn is_lmtp(&self, hop: &str) -> bool {
        let hop = hop.trim();
        self.lmtp.iter().any(|l| match l {
            Listen::Unix(p) => {
                let p = p.display().to_string();
                hop == p || hop.strip_prefix("unix:") == Some(p.as_str())
            }
            Listen::Tcp(a) => hop == a || hop.strip_prefix("inet:") == Some(a.as_str()),
        })
    }
}

/// `name = value` lines (`postconf -n`, `exim -bP`), continuation lines joined.
pub fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = last.as_ref().and_then(|k| out.get_mut(k)) {
                let v: &mut String = v;
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim().to_string();
            out.insert(k.clone(), v.trim().to_string());
            last = Some(k);
        }
    }
    out
}

fn words(v: &str) -> impl Iterator<Item = &str> {
    v.split([',', ' ', '\t']).filter(|w| !w.is_empty())
}

/// Judge a Postfix set-up. `main` is `postconf -n`, `master` is `postconf -M`, `lookup`
/// answers `postmap -q KEY MAP` (None: not found).
pub fn check_postfix(
    want: &Want,
    main: &BTreeMap<String, String>,
    master: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Vec<Finding> {
    let mut f = Vec::new();
    let param = |k: &str| main.get(k).map(String::as_str).unwrap_or("");
    // recipient_delimiter
    if param("recipient_delimiter").contains(want.delimiter) {
        f.push(good(format!(
            "recipient_delimiter contains {:?}",
            want.delimiter
        )));
    } else {
        f.push(bad(format!("recipient_delimiter = {:?} lacks listkeeper's {:?}: addresses such as NAME-confirm+TOKEN@ would not be split as listkeeper expects", param("recipient_delimiter"), want.delimiter)));
    }
    for d in &want.domains {
        // The list domain must be a relay domain, and nothing else.
        for other in [
            "mydestination",
            "virtual_mailbox_domains",
            "virtual_alias_domains",
        ] {
            if words(param(other)).any(|w| w.eq_ignore_ascii_case(d)) {
                f.push(bad(format!("{d} is in {other}: list mail would be delivered locally or aliased, not handed to listkeeper; remove it there")));
            }
        }
        if words(param("relay_domains")).any(|w| w.eq_ignore_ascii_case(d)) {
            f.push(good(format!("{d} is in relay_domains")));
        } else {
            f.push(bad(format!(
                "{d} is not in relay_domains: Postfix refuses list mail for it (main.cf.snippet)"
            )));
        }
        // transport_maps: the first map that knows the domain (or a list address) decides.
        let keys: Vec<&str> = want
            .sample
            .iter()
            .filter(|s| s.ends_with(&format!("@{d}")))
            .map(String::as_str)
            .chain([d.as_str()])
            .collect();
        let found = words(param("transport_maps"))
            .find_map(|map| keys.iter().find_map(|k| lookup(k, map).map(|v| (map, v))));
        match found {
            None => f.push(bad(format!("transport_maps has no entry for {d}: list mail would go to the default relay transport, not to listkeeper (transport file)"))),
            Some((map, v)) => {
                let hop = v.split_once(':').map(|(_, h)| h).unwrap_or("");
                if want.is_lmtp(hop) {
                    f.push(good(format!("{map} routes {d} to {v}")));
                } else {
                    f.push(bad(format!("{map} routes {d} to {v:?}, which names none of listkeeper's lmtp_listen")));
                }
            }
        }
    }
    // The re-injection smtpd.
    let service = master.lines().find(|l| {
        let mut w = l.split_whitespace();
        let name = w.next().unwrap_or("");
        let kind = w.next().unwrap_or("");
        kind == "inet"
            && (name == want.reinject
                || name.ends_with(&format!(":{}", port_of(&want.reinject)))
                    && name.rsplit_once(':').map(|(h, _)| h)
                        == want.reinject.rsplit_once(':').map(|(h, _)| h))
    });
    match service {
        None => f.push(bad(format!("master.cf has no smtpd listening on {} (reinject.target): listkeeper cannot re-inject (master.cf.snippet)", want.reinject))),
        Some(line) => {
            let opts: BTreeMap<&str, &str> = line
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0] == "-o")
                .filter_map(|w| w[1].split_once('='))
                .collect();
            f.push(good(format!("master.cf: smtpd on {}", want.reinject)));
            match opts.get("content_filter") {
                Some(&"") => f.push(good("re-injection: content_filter is empty")),
                _ if param("content_filter").is_empty() => f.push(good("re-injection: no content_filter (none set globally either)")),
                _ => f.push(bad("re-injection smtpd does not clear content_filter: every copy would go through the filter again (-o content_filter=)")),
            }
            if opts.get("smtpd_proxy_filter").is_some_and(|v| !v.is_empty()) {
                f.push(bad("re-injection smtpd has an smtpd_proxy_filter: each copy would be filtered again"));
            }
            if opts
                .get("receive_override_options")
                .is_some_and(|v| v.contains("no_unknown_recipient_checks"))
            {
                f.push(good("re-injection: no_unknown_recipient_checks"));
            } else {
                f.push(bad("re-injection smtpd lacks -o receive_override_options=no_unknown_recipient_checks,...: member addresses would be checked again"));
            }
        }
    }
    // Routing from the list files.
    match &want.socketmap {
        Some(p) => {
            let wanted = format!("socketmap:unix:{}:recipient", p.display());
            if words(param("relay_recipient_maps")).any(|m| m.trim_start_matches("proxy:") == wanted) {
                f.push(good(format!("relay_recipient_maps asks listkeeper ({wanted})")));
            } else {
                f.push(bad(format!("relay_recipient_maps does not use {wanted}: unknown list addresses are accepted and bounced (socketmap.cf.snippet)")));
            }
        }
        None => f.push(good("note: [routing] socketmap_socket is not set; Postfix accepts unknown list addresses and bounces them (postfix/README.md, \"Routing from the list files\")")),
    }
    f
}

fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').map(|(_, p)| p).unwrap_or("")
}

/// What `exim -bt ADDRESS` said: `(router, transport)`, or None (unrouteable).
pub fn parse_exim_bt(out: &str) -> Option<(String, String)> {
    out.lines().find_map(|l| {
        let l = l.trim();
        let r = l.strip_prefix("router = ")?;
        let (router, rest) = r.split_once(',')?;
        let t = rest.trim().strip_prefix("transport = ")?;
        Some((router.trim().to_string(), t.trim().to_string()))
    })
}

/// The answers of Exim's tools that [`check_exim`] judges.
pub struct EximView {
    /// `exim -bP` (main options).
    pub main: BTreeMap<String, String>,
    /// `exim -bt` of a list address, of a role address with an extension, and of an unknown
    /// address at the list domain.
    pub list: Option<(String, String)>,
    /// The role address with an extension.
    pub role: Option<(String, String)>,
    /// The unknown address.
    pub unknown: Option<(String, String)>,
    /// `exim -bP transport T` of the list address's transport.
    pub transport: BTreeMap<String, String>,
    /// The replies `exim -bh 127.0.0.1` on the re-injection port gave to RCPT of a remote
    /// address.
    pub reinject_rcpt: String,
}

/// Judge an Exim set-up.
pub fn check_exim(want: &Want, v: &EximView) -> Vec<Finding> {
    let mut f = Vec::new();
    let port = port_of(&want.reinject);
    let main = |k: &str| v.main.get(k).map(String::as_str).unwrap_or("");
    if words(&main("daemon_smtp_ports").replace(':', " ")).any(|p| p == port) {
        f.push(good(format!("daemon_smtp_ports includes {port}")));
    } else {
        f.push(bad(format!(
            "daemon_smtp_ports = {:?} lacks the re-injection port {port}",
            main("daemon_smtp_ports")
        )));
    }
    let li = main("local_interfaces");
    if li.contains(&format!("127.0.0.1.{port}"))
        || li.contains(&format!("[127.0.0.1]:{port}"))
        || li.contains(&format!("::1.{port}"))
    {
        f.push(good(format!(
            "local_interfaces binds the re-injection port {port} to loopback"
        )));
    } else {
        f.push(bad(format!("local_interfaces = {li:?} does not bind 127.0.0.1.{port}: the re-injection port must listen on loopback only")));
    }
    if main("smtp_accept_queue_per_connection") == "0" {
        f.push(good("smtp_accept_queue_per_connection = 0"));
    } else {
        f.push(bad(format!("smtp_accept_queue_per_connection = {:?}: copies after the first few of a connection wait for a queue run (set 0)", main("smtp_accept_queue_per_connection"))));
    }
    match &v.list {
        None => f.push(bad("a list address is unrouteable: no router sends the list domain to listkeeper (routers.conf.snippet), or its lookup found no answer (is listkeeper running, with [routing] socketmap_socket?)")),
        Some((router, transport)) => {
            f.push(good(format!("a list address goes to router {router}, transport {transport}")));
            let t = |k: &str| v.transport.get(k).map(String::as_str).unwrap_or("");
            if t("driver") != "lmtp" {
                f.push(bad(format!("transport {transport} is not an lmtp transport (driver = {:?})", t("driver"))));
            }
            if want.is_lmtp(t("socket")) {
                f.push(good(format!("transport {transport} connects to {}", t("socket"))));
            } else {
                f.push(bad(format!("transport {transport} socket = {:?} names none of listkeeper's lmtp_listen", t("socket"))));
            }
            if t("batch_max").parse::<u32>().is_ok_and(|n| n > 1) {
                f.push(good(format!("batch_max = {}", t("batch_max"))));
            } else {
                f.push(bad(format!("transport {transport} batch_max = {:?}: one LMTP transaction per list recipient (set e.g. 1000)", t("batch_max"))));
            }
            if t("rcpt_include_affixes") == "true" {
                f.push(good("rcpt_include_affixes is set"));
            } else {
                f.push(bad(format!("transport {transport} lacks rcpt_include_affixes: NAME-confirm+TOKEN@ reaches listkeeper as NAME-confirm@")));
            }
            if v.role.as_ref() != Some(&(router.clone(), transport.clone())) {
                f.push(bad(format!("a role address with a {:?} extension is not routed like the list (local_part_suffix)", want.delimiter)));
            }
        }
    }
    match (&want.socketmap, &v.unknown) {
        (Some(_), None) => f.push(good("an unknown address at the list domain is unrouteable (refused at RCPT)")),
        (Some(_), Some((r, _))) => f.push(bad(format!("an unknown address at the list domain is routed by {r}: the router does not ask listkeeper (LISTKEEPER_IS_LIST)"))),
        (None, _) => f.push(good("note: [routing] socketmap_socket is not set; the listkeeper router cannot tell unknown list addresses")),
    }
    if v.reinject_rcpt.lines().any(|l| l.starts_with("250")) {
        f.push(good(format!("127.0.0.1 may relay through port {port}")));
    } else {
        f.push(bad(format!("RCPT of a remote address from 127.0.0.1 on port {port} is not accepted (acl_rcpt.conf.snippet): {}", v.reinject_rcpt.lines().last().unwrap_or("no reply"))));
    }
    f
}

fn output(cmd: &mut Command) -> Result<(bool, String), String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// Run the check, print the findings, fail when one is bad.
pub fn run(cmd: MtaCommand) -> Result<(), String> {
    let MtaCommand::Check {
        config,
        mta,
        mta_config,
        tool,
    } = cmd;
    let cfg = load_config(&config.config)?;
    let reg = Registry::load(&cfg.server.lists_dir, cfg.server.recipient_delimiter, None);
    let want = Want::from(&cfg, &reg);
    if want.domains.is_empty() {
        return Err("no active list: nothing to check the MTA against".into());
    }
    let findings = match mta {
        Mta::Postfix => {
            let bin = |name: &str| match &tool {
                Some(d) => d.join(name),
                None => PathBuf::from(name),
            };
            let with_c = |c: &mut Command| {
                if let Some(d) = &mta_config {
                    c.arg("-c").arg(d);
                }
            };
            let mut c = Command::new(bin("postconf"));
            with_c(&mut c);
            let (ok, main) = output(c.arg("-n"))?;
            if !ok {
                return Err("postconf -n failed".into());
            }
            let mut c = Command::new(bin("postconf"));
            with_c(&mut c);
            let (_, master) = output(c.arg("-M"))?;
            let lookup = |key: &str, map: &str| {
                let mut c = Command::new(bin("postmap"));
                with_c(&mut c);
                match output(c.arg("-q").arg(key).arg(map)) {
                    Ok((true, v)) => Some(v.trim().to_string()),
                    _ => None,
                }
            };
            check_postfix(&want, &parse_params(&main), &master, &lookup)
        }
        Mta::Exim => {
            let bin = tool.clone().unwrap_or_else(|| {
                if std::path::Path::new("/usr/sbin/exim4").exists() {
                    "/usr/sbin/exim4".into()
                } else {
                    "exim".into()
                }
            });
            let exim = |args: &[&str], input: Option<&str>| -> Result<(bool, String), String> {
                let mut c = Command::new(&bin);
                if let Some(f) = &mta_config {
                    c.arg("-C").arg(f);
                }
                c.args(args);
                match input {
                    None => output(&mut c),
                    Some(text) => {
                        use std::io::Write;
                        c.stdin(std::process::Stdio::piped())
                            .stdout(std::process::Stdio::piped())
                            .stderr(std::process::Stdio::null());
                        let mut child = c.spawn().map_err(|e| format!("cannot run exim: {e}"))?;
                        if let Some(mut si) = child.stdin.take() {
                            let _ = si.write_all(text.as_bytes());
                        }
                        let out = child.wait_with_output().map_err(|e| format!("exim: {e}"))?;
                        Ok((
                            out.status.success(),
                            String::from_utf8_lossy(&out.stdout).into_owned(),
                        ))
                    }
                }
            };
            let (ok, main) = exim(&["-bP"], None)?;
            if !ok {
                return Err("exim -bP failed (is the configuration valid?)".into());
            }
            let d = &want.domains[0];
            let sample = want.sample.clone().unwrap_or_else(|| format!("list@{d}"));
            let (name, _) = sample.split_once('@').unwrap_or((&sample, d));
            let bt = |a: &str| {
                exim(&["-bt", a], None)
                    .ok()
                    .and_then(|(_, o)| parse_exim_bt(&o))
            };
            let list = bt(&sample);
            let role = bt(&format!(
                "{name}-confirm{}0123456789abcdef@{d}",
                want.delimiter
            ));
            let unknown = bt(&format!("no-such-list-address-{}@{d}", std::process::id()));
            let transport = match &list {
                Some((_, t)) => exim(&["-bP", "transport", t], None)
                    .map(|(_, o)| parse_params(&o))
                    .unwrap_or_default(),
                None => BTreeMap::new(),
            };
            // Exim prints boolean options as "name" or "no_name".
            let mut transport = transport;
            if let Some((_, t)) = &list {
                if let Ok((_, o)) = exim(&["-bP", "transport", t], None) {
                    for l in o.lines().map(str::trim) {
                        if !l.contains('=') && !l.is_empty() {
                            let (k, v) = match l.strip_prefix("no_") {
                                Some(k) => (k, "false"),
                                None => (l, "true"),
                            };
                            transport.insert(k.to_string(), v.to_string());
                        }
                    }
                }
            }
            let port = port_of(&want.reinject);
            let session = "EHLO listkeeper.check\r\nMAIL FROM:<check@listkeeper.invalid>\r\nRCPT TO:<someone@elsewhere.example>\r\nQUIT\r\n";
            let iface = format!("127.0.0.1.{port}");
            let (_, h) = exim(&["-bh", "127.0.0.1", "-oMi", &iface], Some(session))?;
            let reinject_rcpt: String = h
                .lines()
                .filter(|l| {
                    l.starts_with("250 Accepted")
                        || l.starts_with("550")
                        || l.starts_with("451")
                        || l.starts_with("250 ") && l.contains("Accepted")
                })
                .collect::<Vec<_>>()
                .join("\n");
            let view = EximView {
                main: parse_params(&main),
                list,
                role,
                unknown,
                transport,
                reinject_rcpt,
            };
            check_exim(&want, &view)
        }
    };
    let mut wrong = 0;
    for f in &findings {
        if f.ok {
            println!("ok    {}", f.text);
        } else {
            wrong += 1;
            println!("WRONG {}", f.text);
        }
    }
    if wrong == 0 {
        println!("{mta:?}: the set-up is right for listkeeper");
        Ok(())
    } else {
        Err(format!("{wrong} problem(s) in the {mta:?} set-up"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Want {
        Want {
            domains: vec!["lists.test".into()],
            sample: Some("dev@lists.test".into()),
            delimiter: '+',
            lmtp: vec![Listen::Unix("/run/lk/lmtp.sock".into())],
            reinject: "127.0.0.1:10026".into(),
            socketmap: Some("/run/lk/map.sock".into()),
        }
    }

    const MAIN: &str = "recipient_delimiter = +\nrelay_domains = lists.test\ntransport_maps = hash:/etc/postfix/transport\nrelay_recipient_maps = proxy:socketmap:unix:/run/lk/map.sock:recipient\n";
    const MASTER: &str = "smtp      inet  n       -       y       -       -       smtpd\n127.0.0.1:10026 inet n - n - - smtpd -o content_filter= -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks\n";

    fn transport(key: &str, map: &str) -> Option<String> {
        (key == "lists.test" && map == "hash:/etc/postfix/transport")
            .then(|| "listkeeper:unix:/run/lk/lmtp.sock".into())
    }

    fn wrong(f: &[Finding]) -> Vec<&str> {
        f.iter()
            .filter(|f| !f.ok)
            .map(|f| f.text.as_str())
            .collect()
    }

    #[test]
    fn a_right_postfix_set_up_has_no_wrong_line() {
        let f = check_postfix(&want(), &parse_params(MAIN), MASTER, &transport);
        assert!(wrong(&f).is_empty(), "{f:?}");
    }

    #[test]
    fn each_postfix_mistake_is_named() {
        let cases: [(&str, &str, &str); 6] = [
            (
                "relay_domains = lists.test",
                "relay_domains = other.test",
                "not in relay_domains",
            ),
            (
                "relay_domains = lists.test",
                "relay_domains = lists.test\nmydestination = lists.test",
                "is in mydestination",
            ),
            (
                "recipient_delimiter = +",
                "recipient_delimiter = -",
                "recipient_delimiter",
            ),
            (
                "transport_maps = hash:/etc/postfix/transport",
                "transport_maps = hash:/etc/postfix/other",
                "transport_maps has no entry",
            ),
            (
                "relay_recipient_maps = proxy:socketmap:unix:/run/lk/map.sock:recipient",
                "relay_recipient_maps =",
                "relay_recipient_maps does not use",
            ),
            ("", "", ""),
        ];
        for (from, to, said) in cases.iter().filter(|c| !c.0.is_empty()) {
            let main = MAIN.replace(from, to);
            let f = check_postfix(&want(), &parse_params(&main), MASTER, &transport);
            let w = wrong(&f);
            assert!(w.len() == 1 && w[0].contains(said), "{to}: {w:?}");
        }
        let master = MASTER.replace("-o content_filter= ", "");
        let main = format!("{MAIN}content_filter = amavis:[127.0.0.1]:10024\n");
        let w = check_postfix(&want(), &parse_params(&main), &master, &transport);
        assert!(
            wrong(&w).iter().any(|t| t.contains("content_filter")),
            "{w:?}"
        );
        let w = check_postfix(&want(), &parse_params(MAIN), "", &transport);
        assert!(
            wrong(&w)
                .iter()
                .any(|t| t.contains("no smtpd listening on 127.0.0.1:10026")),
            "{w:?}"
        );
        let elsewhere = |_: &str, _: &str| Some("lmtp:unix:/var/run/other.sock".to_string());
        let w = check_postfix(&want(), &parse_params(MAIN), MASTER, &elsewhere);
        assert!(
            wrong(&w)
                .iter()
                .any(|t| t.contains("names none of listkeeper's lmtp_listen")),
            "{w:?}"
        );
    }

    fn exim_view() -> EximView {
        let route = Some(("listkeeper".to_string(), "listkeeper_lmtp".to_string()));
        EximView {
            main: parse_params("daemon_smtp_ports = 25 : 10026\nlocal_interfaces = <; 0.0.0.0.25 ; 127.0.0.1.10026\nsmtp_accept_queue_per_connection = 0\n"),
            list: route.clone(),
            role: route,
            unknown: None,
            transport: parse_params("driver = lmtp\nsocket = /run/lk/lmtp.sock\nbatch_max = 1000\nrcpt_include_affixes = true\n"),
            reinject_rcpt: "250 Accepted".into(),
        }
    }

    #[test]
    fn a_right_exim_set_up_has_no_wrong_line_and_each_mistake_is_named() {
        assert!(wrong(&check_exim(&want(), &exim_view())).is_empty());
        let mut v = exim_view();
        v.transport
            .insert("rcpt_include_affixes".into(), "false".into());
        assert!(wrong(&check_exim(&want(), &v))[0].contains("rcpt_include_affixes"));
        let mut v = exim_view();
        v.unknown = Some(("dnslookup".into(), "remote_smtp".into()));
        assert!(wrong(&check_exim(&want(), &v))[0].contains("unknown address"));
        let mut v = exim_view();
        v.reinject_rcpt = "550 relay not permitted".into();
        assert!(wrong(&check_exim(&want(), &v))[0].contains("127.0.0.1"));
        let mut v = exim_view();
        v.main
            .insert("smtp_accept_queue_per_connection".into(), "10".into());
        v.list = None;
        assert_eq!(wrong(&check_exim(&want(), &v)).len(), 2);
    }

    #[test]
    fn exim_bt_output_is_read() {
        assert_eq!(
            parse_exim_bt("dev@lists.test\n  router = listkeeper, transport = listkeeper_lmtp\n"),
            Some(("listkeeper".into(), "listkeeper_lmtp".into()))
        );
        assert_eq!(
            parse_exim_bt("x@lists.test is undeliverable: Unrouteable address\n"),
            None
        );
    }
}
