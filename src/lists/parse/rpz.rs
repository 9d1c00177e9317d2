//! DNS Response Policy Zones (BIND, Unbound, PowerDNS), QNAME triggers only.
//!
//! | record | result |
//! | --- | --- |
//! | `name CNAME .` (NXDOMAIN), `name CNAME *.` (NODATA) | block `name` exactly |
//! | `*.name CNAME .`, `*.name CNAME *.` | block `name` and its subdomains |
//! | `name CNAME rpz-passthru.`, `*.name CNAME rpz-passthru.` | allow, same scopes |
//! | `SOA` anywhere, `NS` at the apex | skipped |
//! | `rpz-drop.`, `rpz-tcp-only.`, local data (A, AAAA, TXT, CNAME elsewhere, ...) | [`Reject::Unsupported`] |
//! | triggers under `rpz-ip`, `rpz-nsdname`, `rpz-nsip`, `rpz-client-ip` | [`Reject::Unsupported`] |
//! | `$INCLUDE`, `$GENERATE` | [`Reject::Unsupported`]: a feed must not read local files |
//! | a record hickory-proto rejects, an owner outside the zone | [`Reject::Malformed`] |
//!
//! RPZ's `*.name` does not cover `name` itself, but [`Scope::Subtree`] does; feeds publish
//! both records anyway (hagezi: `name` and `*.name` for every entry).
//!
//! Trigger names are owner names relative to the zone apex. The apex is the first `$ORIGIN`,
//! or else the owner of the SOA record. Without either (hagezi files have `@ SOA` and no
//! `$ORIGIN`, because the server supplies the zone name), relative names are read under a
//! reserved placeholder origin that is stripped again, so they are the triggers themselves,
//! and absolute names are outside the zone.
//!
//! Each record goes through hickory-proto's zone-file parser, so names, escapes, TTLs, classes
//! and RDATA follow its rules. One consequence: hickory applies IDNA STD3 rules to owner
//! labels, so a label with `_` anywhere but first (`ad_server.example`) is rejected there as
//! `Malformed`, although the other formats accept it.

use std::fmt::Write as _;

use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

use super::line::BLANKS;
use super::sink::Sink;
use super::zone_text::{RecordSplitter, Step};
use crate::lists::normalize::Reject;
use crate::lists::rule::{Action, Scope};

/// Stand-in origin when the file sets none: `.invalid` can never be a real zone (RFC 6761).
const PLACEHOLDER_ORIGIN: &str = "rpz.kidsafe.invalid.";

/// TTL used until a `$TTL` directive sets one; records must have some TTL to parse.
const DEFAULT_TTL: u32 = 3600;

/// Labels that mark non-QNAME triggers when they sit directly under the apex.
const NON_QNAME_TRIGGERS: [&[u8]; 4] = [b"rpz-ip", b"rpz-nsdname", b"rpz-nsip", b"rpz-client-ip"];

/// Parser state for one zone file.
pub(crate) struct Rpz {
    records: RecordSplitter,
    zone: Zone,
}

impl Default for Rpz {
    fn default() -> Self {
        Rpz {
            records: RecordSplitter::default(),
            zone: Zone::new(),
        }
    }
}

impl Rpz {
    /// Feeds one non-blank physical line, leading blanks included.
    pub(crate) fn line(&mut self, line: &str, sink: &mut Sink<'_>) {
        match self.records.push(line) {
            Step::Pending => {}
            Step::Record(record) => self.zone.record(record, sink),
            Step::Overflow => sink.reject(Reject::Malformed),
        }
    }

    /// End of input: a record left open by `(` or `"` is malformed.
    pub(crate) fn finish(&self, sink: &mut Sink<'_>) {
        if self.records.is_open() {
            sink.reject(Reject::Malformed);
        }
    }
}

/// What the directives and records so far established.
struct Zone {
    /// The `$ORIGIN` in effect.
    origin: Option<Name>,
    /// The zone apex once known (first `$ORIGIN`, or the owner of the SOA record).
    apex: Option<Name>,
    /// Default TTL from `$TTL`.
    ttl: u32,
    /// Owner of the previous record, for records that start with a blank.
    last_owner: Option<Name>,
    placeholder: Name,
    /// Reused buffer for the text handed to hickory.
    scratch: String,
}

impl Zone {
    fn new() -> Self {
        Zone {
            origin: None,
            apex: None,
            ttl: DEFAULT_TTL,
            last_owner: None,
            // A constant that always parses; root is a safe fallback regardless.
            placeholder: Name::from_ascii(PLACEHOLDER_ORIGIN).unwrap_or_else(|_| Name::root()),
            scratch: String::new(),
        }
    }

    /// The zone apex, or the placeholder while it is unknown.
    fn apex(&self) -> &Name {
        self.apex.as_ref().unwrap_or(&self.placeholder)
    }

    /// What relative names are relative to.
    fn origin(&self) -> &Name {
        self.origin.as_ref().unwrap_or_else(|| self.apex())
    }

    /// One complete record (comments removed, lines joined).
    fn record(&mut self, text: &str, sink: &mut Sink<'_>) {
        let body = text.trim_start_matches(BLANKS);
        if body.starts_with('$') {
            let verdict = self.directive(body);
            if let Err(reason) = verdict {
                sink.reject(reason);
            }
            return;
        }
        // hickory would open the named file itself; never let it see the directive, even if
        // a quoting mistake made this splitter and its lexer disagree on where records end.
        if text.contains("$INCLUDE") {
            sink.reject(Reject::Unsupported);
            return;
        }
        match self.parse_record(text) {
            Some(record) => self.classify(record, sink),
            None => sink.reject(Reject::Malformed),
        }
    }

    /// `$ORIGIN`, `$TTL`; `$INCLUDE` and `$GENERATE` are valid but not followed.
    fn directive(&mut self, body: &str) -> Result<(), Reject> {
        let mut tokens = body.split_ascii_whitespace();
        let (Some(directive), argument, extra) = (tokens.next(), tokens.next(), tokens.next())
        else {
            return Err(Reject::Malformed);
        };
        let is = |name: &str| directive.eq_ignore_ascii_case(name);
        if is("$INCLUDE") || is("$GENERATE") {
            return Err(Reject::Unsupported);
        }
        let (Some(argument), None) = (argument, extra) else {
            return Err(Reject::Malformed);
        };
        if is("$ORIGIN") {
            let origin =
                Name::parse(argument, Some(self.origin())).map_err(|_| Reject::Malformed)?;
            self.apex.get_or_insert_with(|| origin.clone());
            self.origin = Some(origin);
            Ok(())
        } else if is("$TTL") {
            self.ttl = parse_ttl(argument).map_err(|_| Reject::Malformed)?;
            Ok(())
        } else {
            Err(Reject::Malformed)
        }
    }

    /// Runs hickory's zone parser on one record; `None` if it rejects it or finds more or
    /// fewer than one record.
    fn parse_record(&mut self, text: &str) -> Option<Record> {
        self.scratch.clear();
        // `write!` to a String cannot fail.
        let _ = writeln!(self.scratch, "$TTL {}", self.ttl);
        if text.starts_with(BLANKS) {
            // Same owner as the previous record (RFC 1035 §5.1).
            self.scratch.push_str(&self.last_owner.as_ref()?.to_ascii());
        }
        self.scratch.push_str(text);
        self.scratch.push('\n');
        let origin = self.origin().clone();
        let (_, sets) = Parser::new(self.scratch.as_str(), None, Some(origin))
            .parse()
            .ok()?;
        let mut records = sets.into_values().flat_map(|set| set.into_parts().records);
        match (records.next(), records.next()) {
            (Some(record), None) => Some(record),
            _ => None,
        }
    }

    fn classify(&mut self, record: Record, sink: &mut Sink<'_>) {
        let verdict = self.verdict(&record);
        if record.record_type() == RecordType::SOA
            && self.apex.is_none()
            && record.name != self.placeholder
        {
            self.apex = Some(record.name.clone());
        }
        self.last_owner = Some(record.name);
        match verdict {
            Verdict::Skip => {}
            Verdict::Reject(reason) => sink.reject(reason),
            Verdict::Rule(trigger, action, scope) => sink.name(&trigger, action, scope),
        }
    }

    fn verdict(&self, record: &Record) -> Verdict {
        let rtype = record.record_type();
        if rtype == RecordType::SOA {
            return Verdict::Skip;
        }
        let trigger = match trigger(&record.name, self.apex()) {
            Ok(Some(trigger)) => trigger,
            Ok(None) if rtype == RecordType::NS => return Verdict::Skip,
            Ok(None) => return Verdict::Reject(Reject::Unsupported), // other data at the apex
            Err(reason) => return Verdict::Reject(reason),
        };
        match policy(&record.data) {
            Some(action) => Verdict::Rule(trigger.name, action, trigger.scope),
            None => Verdict::Reject(Reject::Unsupported),
        }
    }
}

/// The outcome of one parsed record.
enum Verdict {
    Skip,
    Reject(Reject),
    Rule(String, Action, Scope),
}

/// A QNAME trigger taken from an owner name.
struct Trigger {
    name: String,
    scope: Scope,
}

/// The owner relative to the apex; `Ok(None)` for the apex itself.
fn trigger(owner: &Name, apex: &Name) -> Result<Option<Trigger>, Reject> {
    if !apex.zone_of(owner) {
        return Err(Reject::Malformed);
    }
    let relative = owner.iter().count() - apex.iter().count();
    let Some(last) = relative.checked_sub(1).and_then(|i| owner.iter().nth(i)) else {
        return Ok(None);
    };
    if NON_QNAME_TRIGGERS
        .iter()
        .any(|marker| last.eq_ignore_ascii_case(marker))
    {
        return Err(Reject::Unsupported);
    }
    let (scope, skip) = if owner.is_wildcard() {
        (Scope::Subtree, 1)
    } else {
        (Scope::Exact, 0)
    };
    if skip == relative {
        return Err(Reject::Unsupported); // `*` at the apex: every name, not a list entry
    }
    let mut name = String::with_capacity(owner.len());
    for label in owner.iter().take(relative).skip(skip) {
        // An escaped dot (`a\.b`) would turn into a label boundary.
        let label = std::str::from_utf8(label).map_err(|_| Reject::BadCharacter)?;
        if label.contains('.') {
            return Err(Reject::BadCharacter);
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(label);
    }
    Ok(Some(Trigger { name, scope }))
}

/// The policy a CNAME target stands for; `None` for actions and local data not supported.
fn policy(data: &RData) -> Option<Action> {
    let RData::CNAME(CNAME(target)) = data else {
        return None;
    };
    let mut labels = target.iter();
    match (labels.next(), labels.next()) {
        (None, _) => Some(Action::Block),          // `.`: NXDOMAIN
        (Some(b"*"), None) => Some(Action::Block), // `*.`: NODATA
        (Some(label), None) if label.eq_ignore_ascii_case(b"rpz-passthru") => Some(Action::Allow),
        _ => None, // rpz-drop., rpz-tcp-only., or a rewrite to another name
    }
}

#[cfg(test)]
mod tests {
    use crate::lists::normalize::Reject;
    use crate::lists::parse::tests::parse_str;
    use crate::lists::parse::{Format, ParseReport};
    use crate::lists::rule::{Action, Rule, Scope};

    fn rpz(input: &str) -> (Vec<Rule>, ParseReport) {
        parse_str(input, Format::Rpz)
    }

    const HAGEZI_HEAD: &str = "$TTL 300\n@ SOA localhost. root.localhost. 1772985739 43200 3600 86400 300\n  NS  localhost.\n;\n";

    #[test]
    fn hagezi_style_relative_names() {
        let input = format!("{HAGEZI_HEAD}bunkr.ac CNAME .\n*.bunkr.ac CNAME .\n");
        let (rules, report) = rpz(&input);
        assert_eq!(
            rules,
            [
                Rule::new("bunkr.ac", Action::Block, Scope::Exact),
                Rule::new("bunkr.ac", Action::Block, Scope::Subtree),
            ]
        );
        assert_eq!(report.lines, 6);
        assert_eq!(report.unsupported, 0);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }

    #[test]
    fn every_supported_action() {
        use Action::*;
        use Scope::*;
        let input = format!(
            "{HAGEZI_HEAD}a.com CNAME .\nb.com CNAME *.\n*.c.com CNAME *.\nd.com CNAME rpz-passthru.\n\
             *.e.com CNAME RPZ-PASSTHRU.\nf.com 60 IN CNAME .\nG.COM in 1h cname .\n"
        );
        let (rules, report) = rpz(&input);
        assert_eq!(
            rules,
            [
                Rule::new("a.com", Block, Exact),
                Rule::new("b.com", Block, Exact),
                Rule::new("c.com", Block, Subtree),
                Rule::new("d.com", Allow, Exact),
                Rule::new("e.com", Allow, Subtree),
                Rule::new("f.com", Block, Exact),
                Rule::new("g.com", Block, Exact),
            ]
        );
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }

    #[test]
    fn unsupported_actions_triggers_and_directives() {
        let input = format!(
            "{HAGEZI_HEAD}a.com CNAME rpz-drop.\nb.com CNAME rpz-tcp-only.\nc.com A 10.0.0.1\n\
             d.com AAAA ::1\ne.com TXT \"blocked\"\nf.com CNAME walled.garden.example.\n\
             g.com CNAME rpz-passthru\n32.1.2.0.192.rpz-ip CNAME .\nns.evil.rpz-nsdname CNAME .\n\
             32.1.2.0.192.rpz-nsip CNAME .\n24.0.2.0.192.rpz-client-ip CNAME rpz-passthru.\n\
             $INCLUDE /etc/passwd\n$GENERATE 1-2 a$ CNAME .\n* CNAME .\n@ TXT \"apex data\"\n\
             sub NS ns.example.\n"
        );
        let (rules, report) = rpz(&input);
        assert!(rules.is_empty(), "{rules:?}");
        assert_eq!(report.unsupported, 16);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }

    #[test]
    fn origin_is_stripped_from_absolute_and_relative_names() {
        let input = "$ORIGIN rpz.example.org.\n$TTL 1h\n@ IN SOA ns.example.org. admin.example.org. (\n\
                     \t2024010101 ; serial\n\t3600 600 86400 60 )\n  IN NS ns.example.org.\n\
                     bad.com CNAME .\nWWW.Bad2.com.rpz.example.org. CNAME .\n\
                     *.bad3.com.rpz.example.org. CNAME .\nout.of.zone. CNAME .\n\
                     $ORIGIN net.rpz.example.org.\nbad4 CNAME .\n*.bad5 CNAME rpz-passthru.\n";
        let (rules, report) = rpz(input);
        assert_eq!(
            rules,
            [
                Rule::new("bad.com", Action::Block, Scope::Exact),
                Rule::new("www.bad2.com", Action::Block, Scope::Exact),
                Rule::new("bad3.com", Action::Block, Scope::Subtree),
                Rule::new("bad4.net", Action::Block, Scope::Exact),
                Rule::new("bad5.net", Action::Allow, Scope::Subtree),
            ]
        );
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&1));
        assert_eq!(report.rejected_total(), 1);
    }

    #[test]
    fn absolute_soa_owner_is_the_apex_without_origin() {
        let input = "rpz.example. 300 SOA ns. host. 1 2 3 4 5\nrpz.example. NS ns.\n\
                     a.com.rpz.example. CNAME .\nb.com CNAME .\nc.com. CNAME .\n";
        let (rules, report) = rpz(input);
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a.com", "b.com"]);
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&1));
    }

    #[test]
    fn absolute_names_without_origin_are_outside_the_zone() {
        let (rules, report) = rpz("$TTL 60\nbad.com. CNAME .\n");
        assert!(rules.is_empty());
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&1));
    }

    #[test]
    fn continuation_records_reuse_the_owner() {
        let input = "a.com CNAME .\n  TXT \"x\"\n*.b.com CNAME .\n\tCNAME .\n";
        let (rules, report) = rpz(input);
        assert_eq!(
            rules,
            [
                Rule::new("a.com", Action::Block, Scope::Exact),
                Rule::new("b.com", Action::Block, Scope::Subtree),
                Rule::new("b.com", Action::Block, Scope::Subtree),
            ]
        );
        assert_eq!(report.unsupported, 1);
        // A continuation with no previous owner has nothing to attach to.
        let (rules, report) = rpz("  CNAME .\n");
        assert!(rules.is_empty());
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&1));
    }

    #[test]
    fn real_world_quirks() {
        let input = "\u{feff}; hagezi header\r\n$TTL 300\r\n@ SOA localhost. root.localhost. 1 2 3 4 5\r\n\
                     \x20 NS localhost.\r\n\r\n;\r\nbücher.example CNAME . ; inline\r\n\
                     xn--bcher-kva.example\tCNAME\t.\r\nUPPER.Example CNAME . \t\r\n";
        let (rules, report) = rpz(input);
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "xn--bcher-kva.example",
                "xn--bcher-kva.example",
                "upper.example"
            ]
        );
        assert_eq!(report.lines, 9);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }

    #[test]
    fn garbage_is_counted_and_parsing_goes_on() {
        let input = format!(
            "{HAGEZI_HEAD}bad..name CNAME .\nx.com BOGUSTYPE .\nx.com CNAME\n\
             $TTL forever\n$ORIGIN\n$BOGUS x\n$TTL 300 extra\nmid.*.x.com CNAME .\n\
             a\\.b.com CNAME .\nok.com CNAME .\nunclosed.com SOA ( 1 2\n"
        );
        let (rules, report) = rpz(&input);
        assert_eq!(rules, [Rule::new("ok.com", Action::Block, Scope::Exact)]);
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&8));
        assert_eq!(report.rejected.get(&Reject::BadCharacter), Some(&2));
        assert_eq!(report.unsupported, 0);
    }

    #[test]
    fn include_never_reaches_hickory() {
        // A stray quote makes this splitter join three lines where hickory's lexer would see
        // three records, the second an `$INCLUDE` it would follow. The guard refuses it.
        let input = "a\"b CNAME .\n$INCLUDE /etc/passwd\nc\" CNAME .\nok.com CNAME .\n";
        let (rules, report) = rpz(input);
        assert_eq!(rules, [Rule::new("ok.com", Action::Block, Scope::Exact)]);
        assert_eq!(report.unsupported, 1);
        let (_, report) = rpz("a TXT \"x\n$INCLUDE /etc/passwd\n\"\n");
        assert_eq!(report.unsupported, 1);
    }

    #[test]
    fn underscore_limitation_of_hickory_labels() {
        // Leading underscores pass hickory's label rules; inner ones do not (see module doc).
        let (rules, report) = rpz("_dmarc.x.com CNAME .\nad_server.x.com CNAME .\n");
        assert_eq!(
            rules,
            [Rule::new("_dmarc.x.com", Action::Block, Scope::Exact)]
        );
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&1));
    }
}
