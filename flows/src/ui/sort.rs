//! Node ordering, as Kratos' `Nodes.SortBySchema` orders nodes
//! (`ui/node/node.go`), including its quirks: keys match node names by
//! prefix, `method` always goes last, nodes of equal position are ordered by
//! the Go `%v` rendering of their value, and only nodes of the same group
//! (or a `default`/`password` pair) are compared at all. Go's stable sort
//! (insertion-sorted blocks of 20 merged with SymMerge) is reproduced step
//! by step, because with such a comparator the result depends on the
//! algorithm.

use serde_json::Value;

use super::node::{Attributes, Group, UiNode};

/// Login group order (`selfservice/flow/login/sort.go`).
pub(crate) const LOGIN_GROUPS: &[Group] = &[
    Group::Oidc,
    Group::Default,
    Group::Webauthn,
    Group::Passkey,
    Group::Code,
    Group::Password,
    Group::Totp,
    Group::LookupSecret,
];

/// Registration group order (`selfservice/flow/registration/sort.go`).
pub(crate) const REGISTRATION_GROUPS: &[Group] = &[
    Group::Oidc,
    Group::Saml,
    Group::Default,
    Group::Webauthn,
    Group::Passkey,
    Group::Code,
    Group::Password,
    Group::Captcha,
    Group::Profile,
];

/// Kratos' `PasswordLoginOrder`: `csrf_token`, the first schema key,
/// `password`, the remaining keys.
pub(crate) fn password_login_order(keys: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(keys.len() + 2);
    out.push("csrf_token".to_owned());
    let mut rest = keys.into_iter();
    if let Some(first) = rest.next() {
        out.push(first);
    }
    out.push("password".to_owned());
    out.extend(rest);
    out
}

/// Go's `fmt.Sprintf("%v", v)` for a JSON value, as far as it matters for
/// ordering (strings, numbers, booleans and `<nil>`; containers roughly).
fn go_value_string(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "<nil>".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => go_number(n),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|v| go_value_string(Some(v))).collect();
            format!("[{}]", parts.join(" "))
        }
        Some(Value::Object(map)) => {
            let mut parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_value_string(Some(v))))
                .collect();
            parts.sort();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// `%v` of a float64 (Go decodes JSON numbers as float64): shortest
/// digits, exponent form when the exponent is below -4 or at least 6.
fn go_number(number: &serde_json::Number) -> String {
    let Some(f) = number.as_f64() else {
        return number.to_string();
    };
    if f == 0.0 || !f.is_finite() {
        return f.to_string();
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return f.to_string();
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return f.to_string();
    };
    if (-4..6).contains(&exp) {
        return f.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

fn sort_value(node: &UiNode) -> String {
    match &node.attributes {
        Attributes::Input(a) => go_value_string(a.value.as_ref()),
        // Kratos renders the `*text.Message` pointer; this is close enough
        // to order text nodes deterministically.
        Attributes::Text(a) => format!("&{{{} {} {}}}", a.text.id, a.text.text, a.text.kind_str()),
        Attributes::Img(a) => a.src.clone(),
        Attributes::A(a) => a.href.clone(),
        Attributes::Script(a) => a.src.clone(),
        Attributes::Div(_) => "<nil>".to_owned(),
    }
}

trait KindStr {
    fn kind_str(&self) -> &'static str;
}

impl KindStr for identity::text::UiText {
    fn kind_str(&self) -> &'static str {
        match self.kind {
            identity::text::UiTextType::Info => "info",
            identity::text::UiTextType::Error => "error",
            identity::text::UiTextType::Success => "success",
        }
    }
}

struct Keyed {
    group: Group,
    position: usize,
    value: String,
    node: UiNode,
}

fn less(a: &Keyed, b: &Keyed) -> bool {
    let comparable = a.group == b.group
        || (a.group == Group::Default && b.group == Group::Password)
        || (a.group == Group::Password && b.group == Group::Default);
    if !comparable {
        return false;
    }
    if a.position != b.position {
        return a.position < b.position;
    }
    a.value < b.value
}

fn insertion_sort(data: &mut [Keyed], a: usize, b: usize) {
    let mut i = a + 1;
    while i < b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
        i += 1;
    }
}

fn swap_range(data: &mut [Keyed], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

fn rotate(data: &mut [Keyed], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn sym_merge(data: &mut [Keyed], a: usize, m: usize, b: usize) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = a;
        while k + 1 < i {
            data.swap(k, k + 1);
            k += 1;
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b);
    }
}

/// Go's `sort.SliceStable` (`stable_func`).
fn go_stable(data: &mut [Keyed]) {
    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(data, a, b);
        a = b;
        b += block;
    }
    insertion_sort(data, a, n);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            sym_merge(data, a, a + block, b);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n);
        }
        block *= 2;
    }
}

/// Sorts nodes as `SortBySchema` with these groups and keys does.
pub(crate) fn sort_nodes(nodes: &mut Vec<UiNode>, groups: &[Group], keys: &[String]) {
    let count = nodes.len();
    let group_index = |g: Group| -> isize {
        groups
            .iter()
            .position(|x| *x == g)
            .and_then(|i| isize::try_from(i).ok())
            .unwrap_or(-1)
    };
    // Kratos orders groups with `sort.Slice`, which is an insertion sort for
    // up to 12 nodes; a stable sort gives the same result there and a
    // deterministic one beyond.
    if !groups.is_empty() {
        nodes.sort_by_key(|n| group_index(n.group));
    }
    let position = |node: &UiNode| -> usize {
        if node.id() == "method" {
            return count + keys.len() + 1;
        }
        keys.iter()
            .position(|k| node.id().starts_with(k.as_str()))
            .unwrap_or(keys.len())
    };
    let mut keyed: Vec<Keyed> = std::mem::take(nodes)
        .into_iter()
        .map(|node| Keyed {
            group: node.group,
            position: position(&node),
            value: sort_value(&node),
            node,
        })
        .collect();
    go_stable(&mut keyed);
    nodes.extend(keyed.into_iter().map(|k| k.node));
}
