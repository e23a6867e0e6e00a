//! The printed report: one line per phase as it ends, then every ratio
//! against its target.

use crate::lag::{Lag, COMMANDS_PER_SEC, MAX_IN_FLIGHT, VISIBLE_TIMEOUT};
use crate::latency::Latency;
use crate::measure::Stats;
use crate::runs::Delivery;
use crate::{BATCH, EVENTS_PER_GRAPH};

pub const RAW_AGAIN: &str = "(a') raw INSERT again, right before (d)";

/// Width of the phase column.
const NAME: usize = 50;

pub fn header() {
    println!("{:<NAME$} {:>10} {:>11} {:>8} {:>8}", "phase", "ops/s", "events/s", "p50 ms", "p99 ms");
}

fn print(name: &str, stats: &Stats, events_per_op: f64) {
    println!(
        "{name:<NAME$} {:>10.1} {:>11.1} {:>8.2} {:>8.2}",
        stats.ops_per_sec,
        stats.ops_per_sec * events_per_op,
        stats.p50_ms,
        stats.p99_ms
    );
}

/// Print a phase's line and hand its figures on.
pub fn report(name: &str, stats: Stats, events_per_op: f64) -> Stats {
    print(name, &stats, events_per_op);
    stats
}

/// (f)'s lines.
pub fn report_latency(f: Latency) -> Latency {
    print("(f) append of 100 events, 1 writer, alternating", &f.append, BATCH as f64);
    print("(f) raw INSERT of 1 row, 1 writer, alternating", &f.insert, 1.0);
    print("(f) raw INSERT of 100 rows (reference), alternating", &f.insert_batch, BATCH as f64);
    f
}

/// (g)'s lines: the lag in the latency columns, then the commands' own
/// latency, then whether the pace held.
pub fn report_lag(lag: Lag) -> Lag {
    print(&format!("(g) lag append->read models, {COMMANDS_PER_SEC:.0} cmd/s"), &lag.lag, EVENTS_PER_GRAPH);
    print("(g)   the same commands' own latency", &lag.commands, EVENTS_PER_GRAPH);
    let verdict = if lag.sustained() { "held" } else { "NOT SUSTAINED" };
    println!(
        "    (g) pace {verdict}: {:.1} of {COMMANDS_PER_SEC:.0} commands/s done ({:.1} events/s), {} ticks skipped \
         ({MAX_IN_FLIGHT} in flight), {} not visible within {} s",
        lag.lag.ops_per_sec,
        lag.events_per_sec(),
        lag.skipped,
        lag.invisible,
        VISIBLE_TIMEOUT.as_secs()
    );
    lag
}

/// The phases that ran.
#[derive(Default)]
pub struct Results {
    pub a: Option<Stats>,
    /// (a) measured again right before (d), when phases ran between them:
    /// the machine's speed drifts over a run (and a minute of full load
    /// slows it), so (d) is also compared with the (a) measured next to it.
    pub a_again: Option<Stats>,
    pub b: Option<Stats>,
    pub c: Option<Stats>,
    /// c': the raw multi-row INSERT.
    pub c_raw: Option<Stats>,
    pub d: Option<Stats>,
    pub e: Option<Stats>,
    pub f: Option<Latency>,
    pub g: Option<Lag>,
    /// (x): graph runs end to end.
    pub x: Option<Stats>,
    /// (y): an agent's runs live and replayed.
    pub y: Option<crate::replay::Replayed>,
    /// (w): append to WebSocket delivery with NATS.
    pub w: Option<Delivery>,
    /// (s): store search over 10,000 listings.
    pub s: Option<Stats>,
    /// (l): store listing pages.
    pub l: Option<Stats>,
    /// (r): rebuilds from a log of a million events, with queries during them.
    pub r: Vec<crate::rebuild::Rebuilt>,
    /// (v): seconds `audit verify` took, and over how many events.
    pub v: Option<(f64, u64)>,
}

/// (y)'s lines: the agent live, and replayed.
pub fn report_replay(y: crate::replay::Replayed) -> crate::replay::Replayed {
    let model = y.model.as_millis();
    print(&format!("(y) agent runs live, model {model} ms, 8 clients"), &y.live, 1.0);
    print("(y') the same runs replayed, 8 clients", &y.replay, 1.0);
    y
}

/// (w)'s line: push latency in the latency columns, pushes/s as ops.
pub fn report_delivery(w: Delivery) -> Delivery {
    print("(w) push latency, recorded_at -> WebSocket, NATS", &w.pushes, 1.0);
    println!("    (w) {:.1} run events/s appended during the window (target pace 1000)", w.events_per_sec);
    w
}

fn line(figure: String, target: &str, met: bool, source: &str) {
    println!("{figure:<NAME$} target {target:<22} {:<6} {source}", if met { "met" } else { "MISSED" });
}

const ISSUE_3: &str = "(issue 3 §5)";
const ISSUE_9: &str = "(issue 9 §4)";
const ISSUE_8: &str = "(issue 8 §7)";
const ISSUE_10: &str = "(issue 10 §3)";
const ISSUE_11: &str = "(issue 11 §4)";
const ISSUE_20: &str = "(issue 20)";
const ISSUE_23: &str = "(issue 23)";

pub fn summarize(r: &Results) {
    println!();
    if let Some(c) = &r.c {
        let c = c.ops_per_sec * BATCH as f64;
        line(format!("c    = {c:.0} events/s"), ">= 100000 events/s", c >= 100_000.0, ISSUE_3);
        if let Some(c_raw) = &r.c_raw {
            let ratio = c / (c_raw.ops_per_sec * BATCH as f64).max(f64::MIN_POSITIVE);
            line(format!("c/c' = {ratio:.2} (events/s over raw 100-row INSERTs)"), ">= 0.85", ratio >= 0.85, ISSUE_20);
        }
    }
    if let Some(f) = &r.f {
        let ratio = |a: f64, i: f64| a / i.max(f64::MIN_POSITIVE);
        let p50: fn(&Stats) -> f64 = |s| s.p50_ms;
        for (name, pick) in [("p50", p50), ("p99", |s| s.p99_ms)] {
            let (append, insert, batch) = (pick(&f.append), pick(&f.insert), pick(&f.insert_batch));
            let over = ratio(append, insert);
            let figure = format!("f {name} = {over:.2}x ({append:.2} ms append / {insert:.2} ms INSERT)");
            line(figure, "<= 1.5x", over <= 1.5, ISSUE_8);
            let reference = ratio(append, batch);
            println!("      (append {name} over the raw 100-row INSERT's {batch:.2} ms: {reference:.2}x)");
        }
    }
    if let Some(g) = &r.g {
        let (p50, p99) = (g.lag.p50_ms, g.lag.p99_ms);
        line(format!("g lag p99 = {p99:.2} ms (p50 {p50:.2} ms)"), "< 50 ms", p99 < 50.0, ISSUE_8);
        let rate = g.events_per_sec();
        let target = format!("{:.0} events/s", COMMANDS_PER_SEC * EVENTS_PER_GRAPH);
        line(format!("g rate = {rate:.1} events/s"), &target, g.sustained(), ISSUE_8);
    }
    if let Some(x) = &r.x {
        let runs = x.ops_per_sec;
        line(format!("x    = {runs:.1} runs/s (p99 {:.1} ms)", x.p99_ms), ">= 400 runs/s", runs >= 400.0, ISSUE_20);
    }
    if let Some(y) = &r.y {
        let (live, replay) = (y.live.ops_per_sec, y.replay.ops_per_sec);
        let ratio = replay / live.max(f64::MIN_POSITIVE);
        let figure = format!("y'/y = {ratio:.2} ({replay:.1} replays/s / {live:.1} live runs/s)");
        line(figure, ">= 2.0", ratio >= 2.0, ISSUE_23);
    }
    if let Some(w) = &r.w {
        let (p99, rate) = (w.pushes.p99_ms, w.events_per_sec);
        let figure = format!("w p99 = {p99:.1} ms at {rate:.0} events/s (p50 {:.1} ms)", w.pushes.p50_ms);
        line(figure, "< 100 ms at 1000/s", p99 < 100.0 && rate >= 900.0, ISSUE_9);
    }
    if let Some(s) = &r.s {
        let figure = format!("s p99 = {:.2} ms (p50 {:.2} ms, {:.0} searches/s)", s.p99_ms, s.p50_ms, s.ops_per_sec);
        line(figure, "< 20 ms", s.p99_ms < 20.0, ISSUE_10);
    }
    if let Some(l) = &r.l {
        println!("l    = {:.0} listing pages/s (p99 {:.2} ms) {ISSUE_10}", l.ops_per_sec, l.p99_ms);
    }
    for rebuilt in &r.r {
        let (name, alone, beside) = (rebuilt.name, rebuilt.alone, rebuilt.beside);
        line(format!("r {name} = {alone:.0} events/s rebuilt alone"), ">= 50000 events/s", alone >= 50_000.0, ISSUE_20);
        let figure = format!("r {name} = {beside:.0} events/s rebuilt beside 4 query clients");
        line(figure, ">= 50000 events/s", beside >= 50_000.0, ISSUE_11);
        let Some(q) = &rebuilt.queries else { continue };
        let figure = format!("r {name} queries p99 = {:.2} ms ({:.0}/s)", q.p99_ms, q.ops_per_sec);
        line(figure, "< 50 ms", q.p99_ms < 50.0 && q.ops_per_sec > 0.0, ISSUE_11);
    }
    if let Some((seconds, events)) = r.v {
        let figure = format!("v    = {seconds:.1} s to verify {events} events");
        let scaled = seconds * 1_000_000.0 / (events.max(1) as f64);
        line(figure, "< 30 s per 1M events", scaled < 30.0, ISSUE_11);
    }
    let Some(a) = &r.a else { return };
    let a = a.ops_per_sec.max(f64::MIN_POSITIVE);
    if let Some(b) = &r.b {
        let b_a = 100.0 * b.ops_per_sec / a;
        line(format!("b/a  = {b_a:.1}%"), ">= 85%", b_a >= 85.0, ISSUE_20);
    }
    if let Some(e) = &r.e {
        let e_a = e.ops_per_sec / a;
        line(format!("e/a  = {e_a:.2} (commands/s over raw INSERTs/s)"), ">= 0.80", e_a >= 0.80, ISSUE_20);
    }
    let Some(d) = &r.d else { return };
    let d_over = |name: &str, a: f64| {
        let by_requests = 100.0 * d.ops_per_sec / a.max(f64::MIN_POSITIVE);
        let by_events = by_requests * EVENTS_PER_GRAPH;
        line(format!("{name} = {by_events:.1}% by events/s"), ">= 30%", by_events >= 30.0, ISSUE_3);
        line(format!("{name} = {by_requests:.1}% by requests/s"), ">= 35%", by_requests >= 35.0, ISSUE_20);
    };
    d_over("d/a ", a);
    if let Some(again) = &r.a_again {
        d_over("d/a'", again.ops_per_sec);
    }
}
