//! Rule lookup cost against the number of rules: `cargo bench -p tests --bench matcher`.
//!
//! Each set mixes exact URLs, regexp patterns with one or two sections and catch-all subtrees over
//! one host per ten rules. `find` walks a radix tree keyed by the literal prefix of each pattern, so
//! the cost of a hit or a miss should stay flat from 10 to 10 000 rules.
//!
//! - `find`: real-config shape, where few rules have no literal host (here 10%, at most 16).
//! - `find_wide_bucket`: a worst case with 10% of the rules behind an `https://<...>` or `<...>`
//!   pattern and so sharing a node (1 000 of them at 10 000 rules), tested with a `RegexSet`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rules::{Handler, Match, MatchError, Rule, RuleSet, Strategy, Upstream};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

fn rule(id: String, url: String, methods: &[&str]) -> Rule {
    Rule {
        id,
        version: String::new(),
        description: String::new(),
        r#match: Match {
            url,
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        },
        upstream: Upstream {
            url: "http://backend:8080".into(),
            ..Upstream::default()
        },
        authenticators: vec![Handler::new("cookie_session"), Handler::new("anonymous")],
        authorizer: Handler::new("allow"),
        mutators: vec![Handler::new("header")],
        errors: Vec::new(),
    }
}

fn host(i: usize) -> String {
    format!("svc{}.example.com", i / 10)
}

/// `n` rules; `wide` of them have no literal host.
fn generate(n: usize, wide: usize) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(n);
    for i in 0..n - wide {
        let (url, methods): (String, &[&str]) = match i % 4 {
            0 => (
                format!("https://{}/api/v1/res{i}/<[0-9]+>", host(i)),
                &["GET"],
            ),
            1 => (
                format!("https://{}/api/v1/res{i}/list", host(i)),
                &["GET", "HEAD"],
            ),
            2 => (
                format!("https://{}/api/v1/res{i}/<[^/]+>/items/<[0-9]+>", host(i)),
                &["POST", "PUT"],
            ),
            _ => (format!("https://{}/static/res{i}/<.*>", host(i)), &["GET"]),
        };
        rules.push(rule(format!("rule-{i}"), url, methods));
    }
    for j in 0..wide {
        let url = if j.is_multiple_of(2) {
            format!("<https?>://legacy{j}.example.net/<.*>")
        } else {
            format!("https://<[a-z0-9-]+>.tenant{j}.example.io/api/<.*>")
        };
        rules.push(rule(format!("wide-{j}"), url, &["GET", "POST"]));
    }
    rules
}

fn compile(rules: Vec<Rule>) -> RuleSet {
    let n = rules.len();
    let start = Instant::now();
    let set = RuleSet::compile(rules, Strategy::Regexp).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("compiled {n} rules in {:?}", start.elapsed());
    set
}

fn bench_sizes(c: &mut Criterion, group: &str, wide: impl Fn(usize) -> usize) {
    let mut group = c.benchmark_group(group);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let set = compile(generate(n, wide(n)));
        // A regexp rule in the middle of the set, with its capture.
        let i = (n / 2) & !3;
        let hit_host = host(i);
        let hit_path = format!("/api/v1/res{i}/12345");
        let m = set
            .find("GET", "https", &hit_host, &hit_path)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.rule.id(), format!("rule-{i}"));
        assert_eq!(m.captures, ["12345"]);
        // A known host, an unknown resource.
        let miss_path = "/api/v1/res99999999/12345";
        assert_eq!(
            set.find("GET", "https", &hit_host, miss_path).map(|_| ()),
            Err(MatchError::NoMatch)
        );

        group.bench_with_input(BenchmarkId::new("hit", n), &set, |b, set| {
            b.iter(|| {
                set.find(
                    black_box("GET"),
                    black_box("https"),
                    black_box(&hit_host),
                    black_box(&hit_path),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("miss", n), &set, |b, set| {
            b.iter(|| {
                set.find(
                    black_box("GET"),
                    black_box("https"),
                    black_box(&hit_host),
                    black_box(miss_path),
                )
            })
        });
    }
    group.finish();
}

fn find(c: &mut Criterion) {
    bench_sizes(c, "find", |n| (n / 10).clamp(1, 16));
}

fn find_wide_bucket(c: &mut Criterion) {
    bench_sizes(c, "find_wide_bucket", |n| n / 10);
}

criterion_group!(benches, find, find_wide_bucket);
criterion_main!(benches);
