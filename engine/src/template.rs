//! The templates a user writes (`map:` values, `lookup.query`): checked before they are
//! compiled, so that no template can take the process down. Handlebars parses and renders
//! by recursion, so a template's size and nesting are bounded before the parser sees it;
//! then its syntax tree is walked for helpers and partials that do not exist, partials
//! chosen at run time, and partials that call themselves (which would recurse forever).

use std::collections::BTreeMap;

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::Handlebars;

/// The deepest nesting of blocks (`{{#if}}`, `{{#each}}`, …), subexpressions and literal
/// lists a template may have. A message needs a few levels; thousands overflow the stack.
pub const MAX_NESTING: usize = 32;

/// The longest template, in bytes.
pub const MAX_BYTES: usize = 64 * 1024;

/// The helpers every template can call: handlebars' own and Switchboard's.
pub const HELPERS: &[&str] = &[
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "raw",
    "log",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
    "len",
    "default",
    "trim",
    "upper",
    "lower",
    "truncate",
    "format_date",
    "e164",
    "add",
    "sub",
    "mul",
    "div",
    "round",
    "format_number",
    "format_currency",
    "replace",
    "regex_replace",
    "split",
    "join",
    "coalesce",
    "parse_date",
    "convert_tz",
    "map_value",
];

/// What is wrong with a template, as a sentence (without saying which template), with
/// a hint and, for syntax errors, the place in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub message: String,
    pub hint: String,
    /// Line and column inside the template, when the parser knows them.
    pub at: Option<(usize, usize)>,
}

impl TemplateProblem {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        TemplateProblem {
            message: message.into(),
            hint: hint.into(),
            at: None,
        }
    }
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.at {
            write!(f, " (template line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// A registry as every template is rendered with: strict about missing fields, no HTML
/// escaping, Switchboard's helpers.
pub(crate) fn registry() -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    crate::helpers::register(&mut registry);
    registry
}

/// Check a template and register it under `name`.
pub(crate) fn register(
    registry: &mut Handlebars<'static>,
    name: &str,
    source: &str,
) -> Result<(), TemplateProblem> {
    check_bounds(source)?;
    let template = Template::compile(source).map_err(|e| TemplateProblem {
        message: format!("does not parse: {}", plain_reason(&e.reason().to_string())),
        hint: "templates look like `Hi {{name}}`; close every `{{` with `}}` and every \
               `{{#block}}` with `{{/block}}`"
            .into(),
        at: e.pos(),
    })?;
    check_tree(&template)?;
    registry.register_template(name, template);
    Ok(())
}

/// Check a template and render it once against `data`, with a render's limits (for
/// fuzzing and tests): the text, or why not.
pub fn render_once(source: &str, data: &serde_json::Value) -> Result<String, String> {
    let mut registry = registry();
    register(&mut registry, "t", source).map_err(|p| p.to_string())?;
    crate::helpers::reset_loop_budget();
    registry.render("t", data).map_err(|e| e.to_string())
}

/// Check a template without keeping it (for `validate`).
pub fn check(source: &str) -> Result<(), TemplateProblem> {
    register(&mut registry(), "check", source)
}

/// The parser's wording, for people: `invalid handlebars syntax: expected identifier,
/// helper_parameter, or trailing_tilde_to_omit_whitespace` becomes `expected a field
/// name, a value or \`}}\``.
fn plain_reason(reason: &str) -> String {
    let reason = reason
        .strip_prefix("invalid handlebars syntax: ")
        .unwrap_or(reason);
    let Some(expected) = reason.strip_prefix("expected ") else {
        return reason.to_string();
    };
    let mut words: Vec<&str> = Vec::new();
    for token in expected.split(", ").flat_map(|t| t.split(" or ")) {
        let token = token.trim().trim_start_matches("or ").trim();
        let word = match token {
            "identifier" | "name" | "path_ident" | "path_id" | "reference" => "a field name",
            "helper_parameter" | "param" | "literal" | "hash" => "a value",
            "trailing_tilde_to_omit_whitespace" | "expression_end" | "pro_whitespace_omitter" => {
                "`}}`"
            }
            "leading_tilde_to_omit_whitespace" => "a field name",
            "partial_identifier" | "partial_exp" => "a partial's name",
            "" => continue,
            _ => "something else",
        };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    match words.as_slice() {
        [] => reason.to_string(),
        [one] => format!("expected {one}"),
        [rest @ .., last] => format!("expected {} or {last}", rest.join(", ")),
    }
}

/// Size and nesting, read from the text before the parser sees it. Block tags (`{{#…}}`,
/// `{{^…}}` open, `{{/…}}` close) and the brackets inside a tag (subexpressions, literal
/// lists and objects) count; comments and raw blocks are skipped as the parser skips
/// them. Where the text is malformed the count errs on the deep side.
fn check_bounds(source: &str) -> Result<(), TemplateProblem> {
    if source.len() > MAX_BYTES {
        return Err(TemplateProblem::new(
            format!(
                "is {} bytes long; a template may have at most {MAX_BYTES}",
                source.len()
            ),
            "keep long fixed text in the record or split it over fields",
        ));
    }
    let deep = || {
        TemplateProblem::new(
            format!("nests more than {MAX_NESTING} levels deep"),
            "flatten the blocks (`{{#if}}` inside `{{#if}}` …) or the nested `( )`",
        )
    };
    let bytes = source.as_bytes();
    let mut blocks: usize = 0;
    let mut i = 0;
    while let Some(found) = source[i..].find("{{") {
        let open = i + found;
        if open > 0 && bytes[open - 1] == b'\\' {
            i = open + 2;
            continue;
        }
        let rest = &source[open..];
        if rest.starts_with("{{{{") {
            // A raw block: its content is text up to the first closing raw tag.
            match rest.find("{{{{/") {
                Some(end) => {
                    i = open + end + 5;
                    continue;
                }
                None => return Ok(()),
            }
        }
        if rest.starts_with("{{!--") {
            match rest.find("--}}") {
                Some(end) => {
                    i = open + end + 4;
                    continue;
                }
                None => return Ok(()),
            }
        }
        if rest.starts_with("{{!") {
            match rest.find("}}") {
                Some(end) => {
                    i = open + end + 2;
                    continue;
                }
                None => return Ok(()),
            }
        }
        let (end, brackets) = tag_end(&rest[2..]);
        if brackets > MAX_NESTING {
            return Err(deep());
        }
        let inner = rest[2..2 + end].trim_start_matches(['~', ' ']);
        if inner.starts_with('#') {
            blocks += 1;
        } else if let Some(after) = inner.strip_prefix('^') {
            if !after.trim_end_matches(['~', ' ']).is_empty() {
                blocks += 1;
            }
        } else if inner.starts_with('/') {
            blocks = blocks.saturating_sub(1);
        }
        if blocks > MAX_NESTING {
            return Err(deep());
        }
        i = open + 2 + end;
        if i >= source.len() {
            break;
        }
    }
    Ok(())
}

/// Where a tag's text (after its `{{`) ends — at the `}}` outside strings and brackets,
/// or at the end of the text — and how deep its brackets nest.
fn tag_end(tag: &str) -> (usize, usize) {
    let mut depth: usize = 0;
    let mut deepest: usize = 0;
    let mut quote: Option<char> = None;
    let mut chars = tag.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                '}' if depth == 0 && tag[at..].starts_with("}}") => return (at, deepest),
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    (tag.len(), deepest)
}

/// What the syntax tree says: every helper it calls exists, every partial it uses is
/// defined in it by `{{#*inline "name"}}`, by a literal name, none calls itself, and the
/// nesting a render goes through — blocks, and blocks inside the partials they call —
/// stays within [`MAX_NESTING`].
fn check_tree(template: &Template) -> Result<(), TemplateProblem> {
    let mut walk = Walk::default();
    walk.template(template, "", 0)?;
    for calls in walk.scopes.values() {
        for (callee, _) in calls.calls.iter() {
            if callee != "@partial-block" && !walk.scopes.contains_key(callee.as_str()) {
                return Err(TemplateProblem::new(
                    format!("uses partial `{callee}`, which the template does not define"),
                    format!(
                        "define it in the same template: `{{{{#*inline \"{callee}\"}}}}…{{{{/inline}}}}`"
                    ),
                ));
            }
        }
    }
    // Partials that can reach themselves would render forever.
    if let Some(cycle) = walk.cycle() {
        return Err(TemplateProblem::new(
            format!(
                "has partial `{}` calling itself ({}), which would never end",
                cycle[0],
                cycle.join(" → ")
            ),
            "a flow's template cannot recurse; write the text out",
        ));
    }
    let mut memo = BTreeMap::new();
    if walk.depth_of("", &mut memo) > MAX_NESTING {
        return Err(TemplateProblem::new(
            format!("nests more than {MAX_NESTING} levels deep through its partials"),
            "call fewer partials inside one another",
        ));
    }
    Ok(())
}

/// One template or inline partial: how deep its own blocks nest, and the partials it
/// calls with the block depth at each call.
#[derive(Default)]
struct Scope {
    deepest: usize,
    calls: Vec<(String, usize)>,
}

/// The walk over a template's tree, by scope: the template itself (`""`) and each
/// inline partial it defines.
#[derive(Default)]
struct Walk {
    scopes: BTreeMap<String, Scope>,
}

impl Walk {
    fn template(
        &mut self,
        template: &Template,
        scope: &str,
        depth: usize,
    ) -> Result<(), TemplateProblem> {
        let entry = self.scopes.entry(scope.to_string()).or_default();
        entry.deepest = entry.deepest.max(depth);
        for element in &template.elements {
            self.element(element, scope, depth)?;
        }
        Ok(())
    }

    fn element(
        &mut self,
        element: &TemplateElement,
        scope: &str,
        depth: usize,
    ) -> Result<(), TemplateProblem> {
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => Ok(()),
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                let call = !h.params.is_empty() || !h.hash.is_empty();
                if call {
                    known_helper(&h.name, h.params.len())?;
                }
                self.parameters(h.params.iter().chain(h.hash.values()), scope, depth)
            }
            TemplateElement::HelperBlock(h) => {
                // `{{#field}}…{{/field}}` without parameters is a section over a field.
                if !h.params.is_empty() || !h.hash.is_empty() {
                    known_helper(&h.name, h.params.len())?;
                }
                self.parameters(h.params.iter().chain(h.hash.values()), scope, depth)?;
                for inner in [&h.template, &h.inverse].into_iter().flatten() {
                    self.template(inner, scope, depth + 1)?;
                }
                Ok(())
            }
            TemplateElement::DecoratorExpression(d) | TemplateElement::DecoratorBlock(d) => {
                let name = name_of(&d.name).unwrap_or_default();
                if name != "inline" {
                    return Err(TemplateProblem::new(
                        format!("uses unknown decorator `*{name}`"),
                        "the only decorator is `{{#*inline \"name\"}}…{{/inline}}`",
                    ));
                }
                let partial = d.params.first().and_then(name_of).unwrap_or_default();
                if partial.is_empty() || partial == "@partial-block" {
                    return Err(TemplateProblem::new(
                        "defines an inline partial without a usable name",
                        "write `{{#*inline \"name\"}}…{{/inline}}`",
                    ));
                }
                if self.scopes.contains_key(&partial) {
                    return Err(TemplateProblem::new(
                        format!("defines partial `{partial}` twice"),
                        "give each inline partial its own name",
                    ));
                }
                self.scopes.insert(partial.clone(), Scope::default());
                match &d.template {
                    Some(t) => self.template(t, &partial, 0),
                    None => Ok(()),
                }
            }
            TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
                let callee = match &d.name {
                    Parameter::Subexpression(_) => {
                        return Err(TemplateProblem::new(
                            "chooses a partial at run time",
                            "name the partial literally: `{{> name}}`",
                        ))
                    }
                    other => name_of(other).unwrap_or_default(),
                };
                self.scopes
                    .entry(scope.to_string())
                    .or_default()
                    .calls
                    .push((callee, depth));
                self.parameters(d.params.iter().chain(d.hash.values()), scope, depth)?;
                match &d.template {
                    Some(t) => self.template(t, scope, depth + 1),
                    None => Ok(()),
                }
            }
            _ => Err(TemplateProblem::new(
                "uses a kind of tag Switchboard does not know",
                "use `{{field}}`, helpers, blocks and inline partials",
            )),
        }
    }

    fn parameters<'p>(
        &mut self,
        parameters: impl Iterator<Item = &'p Parameter>,
        scope: &str,
        depth: usize,
    ) -> Result<(), TemplateProblem> {
        for parameter in parameters {
            if let Parameter::Subexpression(sub) = parameter {
                self.element(sub.as_element(), scope, depth)?;
            }
        }
        Ok(())
    }

    /// A cycle of partials calling each other (`a → b → a`), if there is one: one
    /// depth-first walk over the calls, a partial on the walk's path met again closing
    /// the cycle.
    fn cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            OnPath,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        for start in self.scopes.keys() {
            if marks.contains_key(start.as_str()) {
                continue;
            }
            // The path, each partial with the index of its next call to follow.
            let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
            marks.insert(start, Mark::OnPath);
            while let Some((node, next)) = path.last_mut() {
                let calls = self
                    .scopes
                    .get(*node)
                    .map(|s| s.calls.as_slice())
                    .unwrap_or(&[]);
                let Some((callee, _)) = calls.get(*next) else {
                    marks.insert(node, Mark::Done);
                    path.pop();
                    continue;
                };
                *next += 1;
                match marks.get(callee.as_str()) {
                    Some(Mark::OnPath) => {
                        let from = path
                            .iter()
                            .position(|(n, _)| *n == callee.as_str())
                            .unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[from..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(callee.clone());
                        return Some(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        if self.scopes.contains_key(callee.as_str()) {
                            marks.insert(callee, Mark::OnPath);
                            path.push((callee.as_str(), 0));
                        }
                    }
                }
            }
        }
        None
    }

    /// How deep a render of `scope` nests, its partials included (no cycles by now).
    fn depth_of(&self, scope: &str, memo: &mut BTreeMap<String, usize>) -> usize {
        if let Some(depth) = memo.get(scope) {
            return *depth;
        }
        let Some(own) = self.scopes.get(scope) else {
            return 0;
        };
        // Guard against a cycle slipping through: count it as too deep.
        memo.insert(scope.to_string(), MAX_NESTING + 1);
        let mut deepest = own.deepest;
        for (callee, at) in &own.calls {
            if callee != "@partial-block" {
                deepest = deepest.max(at + 1 + self.depth_of(callee, memo));
            }
        }
        memo.insert(scope.to_string(), deepest);
        deepest
    }
}

/// The name a parameter stands for: a helper or partial name, a path, a literal text.
fn name_of(parameter: &Parameter) -> Option<String> {
    match parameter {
        Parameter::Name(name) => Some(name.clone()),
        Parameter::Path(handlebars::Path::Relative((_, raw)))
        | Parameter::Path(handlebars::Path::Local((_, _, raw))) => Some(raw.clone()),
        Parameter::Literal(serde_json::Value::String(s)) => Some(s.clone()),
        Parameter::Literal(other) => Some(other.to_string()),
        _ => None,
    }
}

/// A helper this template may call, with as many parameters as it takes.
fn known_helper(name: &Parameter, given: usize) -> Result<(), TemplateProblem> {
    let Some(name) = name_of(name) else {
        return Ok(());
    };
    if HELPERS.contains(&name.as_str()) {
        return match arity_problem(&name, given) {
            None => Ok(()),
            Some(problem) => Err(TemplateProblem::new(problem, usage(&name))),
        };
    }
    let hint = match flows::did_you_mean(&name, HELPERS.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("helpers: {}", HELPERS.join(", ")),
    };
    Err(TemplateProblem::new(
        format!("calls unknown helper `{name}`"),
        hint,
    ))
}

/// Whether a helper of Switchboard's is called with a parameter count it takes.
fn arity_problem(name: &str, given: usize) -> Option<String> {
    let own = crate::helpers::ARITY.iter().chain(crate::formatters::ARITY);
    let (_, least, most) = own.clone().find(|(n, _, _)| *n == name)?;
    if (*least..=*most).contains(&given) {
        return None;
    }
    let wanted = match (*least, *most) {
        (l, m) if l == m => format!("{l}"),
        (l, usize::MAX) => format!("at least {l}"),
        (l, m) => format!("{l} to {m}"),
    };
    Some(format!(
        "calls `{name}` with {given} parameter{}; it takes {wanted}",
        if given == 1 { "" } else { "s" }
    ))
}

/// How a helper is called, for hints.
fn usage(name: &str) -> String {
    let example = match name {
        "default" => "{{default name \"friend\"}}",
        "trim" | "upper" | "lower" => "{{upper name}}",
        "truncate" => "{{truncate note 20 \"…\"}}",
        "format_date" => "{{format_date when \"%d.%m.%Y\"}}",
        "e164" => "{{e164 phone \"UA\"}}",
        "add" | "sub" | "mul" | "div" => "{{mul price qty}}",
        "round" => "{{round total 2}}",
        "format_number" => "{{format_number total 2 \"uk\"}}",
        "format_currency" => "{{format_currency total \"UAH\" \"uk\"}}",
        "replace" => "{{replace phone \"-\" \"\"}}",
        "regex_replace" => "{{regex_replace note \"\\\\s+\" \" \"}}",
        "split" => "{{split name \" \" 0}}",
        "join" => "{{join tags \", \"}}",
        "coalesce" => "{{coalesce mobile phone \"none\"}}",
        "parse_date" => "{{parse_date when \"%d/%m/%Y %H:%M\" \"Europe/Kyiv\"}}",
        "convert_tz" => "{{convert_tz when \"America/New_York\"}}",
        "map_value" => "{{map_value status pending=\"Очікує\" paid=\"Сплачено\"}}",
        _ => return String::new(),
    };
    format!("for example `{example}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(source: &str) -> String {
        match check(source) {
            Ok(()) => String::new(),
            Err(p) => p.message,
        }
    }

    #[test]
    fn ordinary_templates_pass() {
        for ok in [
            "Hi {{name}}",
            "{{#if vip}}Dear {{name}}{{else}}Hi{{/if}}",
            "{{#each items}}{{this}}, {{/each}}",
            "{{upper (trim name)}}",
            "{{default nick \"friend\"}}",
            "{{#*inline \"sig\"}}-- {{shop}}{{/inline}}Thanks{{> sig}}",
            "{{!-- {{#if}} in a comment --}}ok",
            "\\{{not a tag}}",
            "{{#contact}}{{mobilePhone}}{{/contact}}",
        ] {
            assert_eq!(problem(ok), "", "{ok}");
        }
    }

    #[test]
    fn a_self_recursive_partial_is_refused() {
        assert!(problem("{{#*inline \"x\"}}a{{> x}}{{/inline}}{{> x}}").contains("calling itself"));
        assert!(problem(
            "{{#*inline \"a\"}}{{> b}}{{/inline}}{{#*inline \"b\"}}{{> a}}{{/inline}}{{> a}}"
        )
        .contains("a → b → a"));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}x{}", "{{#if a}}".repeat(2000), "{{/if}}".repeat(2000));
        assert!(problem(&deep).contains("nests more than 32"));
        let parens = format!(
            "{{{{upper {}a{}}}}}",
            "(trim ".repeat(5_000),
            ")".repeat(5_000)
        );
        assert!(problem(&parens).contains("nests more than 32"));
        let unclosed = format!("{{{{x {}", "[".repeat(50_000));
        assert!(problem(&unclosed).contains("nests more than 32"));
        let ok = format!("{}x{}", "{{#if a}}".repeat(32), "{{/if}}".repeat(32));
        assert_eq!(problem(&ok), "");
        // A chain of partials, each nesting within the limit, nests too deep in all.
        let chain: String = (0..40)
            .map(|i| {
                format!(
                    "{{{{#*inline \"p{i}\"}}}}{{{{#if a}}}}{{{{> p{}}}}}{{{{/if}}}}{{{{/inline}}}}",
                    i + 1
                )
            })
            .collect::<String>()
            + "{{#*inline \"p40\"}}end{{/inline}}{{> p0}}";
        assert!(
            problem(&chain).contains("through its partials"),
            "{}",
            problem(&chain)
        );
    }

    #[test]
    fn unknown_helpers_partials_and_decorators_are_named() {
        assert_eq!(problem("{{uper name}}"), "calls unknown helper `uper`");
        assert_eq!(
            problem("{{truncate note}}"),
            "calls `truncate` with 1 parameter; it takes 2 to 3"
        );
        assert_eq!(
            problem("{{upper (add 1 2 3)}}"),
            "calls `add` with 3 parameters; it takes 2"
        );
        assert_eq!(problem("{{coalesce a b c d e}}"), "");
        assert_eq!(
            problem("{{> footer}}"),
            "uses partial `footer`, which the template does not define"
        );
        assert_eq!(problem("{{> (pick x)}}"), "chooses a partial at run time");
        assert!(problem("{{*log \"x\"}}").contains("unknown decorator"));
        assert!(
            problem("{{#*inline \"a\"}}1{{/inline}}{{#*inline \"a\"}}2{{/inline}}")
                .contains("twice")
        );
        assert!(problem(&"a".repeat(MAX_BYTES + 1)).contains("bytes long"));
    }
}

/// Generated templates: each is refused with a reason, or compiles and renders (on a
/// thread with a worker's stack) without a panic or a stack overflow.
#[cfg(test)]
mod generated {
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "{{",
        "}}",
        "{{{",
        "}}}",
        "{{{{raw}}}}",
        "{{{{/raw}}}}",
        "{{!",
        "{{!--",
        "--}}",
        "#if ",
        "#each ",
        "#with ",
        "#unless ",
        "/if",
        "/each",
        "/with",
        "{{else}}",
        "{{^}}",
        "^",
        "> ",
        "#> ",
        "#*inline ",
        "/inline",
        "\"p\"",
        "\"q\"",
        "*",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "\\",
        "~",
        " ",
        "name",
        "phone",
        "items",
        "this",
        "../",
        "@index",
        "@root.",
        ".",
        "upper ",
        "trim ",
        "default ",
        "truncate ",
        "e164 ",
        "format_date ",
        "lookup ",
        "eq ",
        "uper ",
        "1",
        "-2",
        "true",
        "null",
        "x=",
        "as |a b|",
        "é",
        "💥",
    ];

    fn render_deep_stack(source: String) -> std::thread::Result<()> {
        std::thread::Builder::new()
            .stack_size(2 << 20) // a tokio worker's
            .spawn(move || {
                let mut registry = super::registry();
                if super::register(&mut registry, "t", &source).is_ok() {
                    let data = serde_json::json!({
                        "name": "Olena", "phone": "+380501234567",
                        "items": [1, [2, [3]], {"a": {"b": "c"}}],
                    });
                    let _ = registry.render("t", &data);
                }
            })
            .map_err(|e| Box::new(e) as Box<dyn std::any::Any + Send>)?
            .join()
    }

    proptest! {
        #[test]
        fn any_template_is_refused_or_renders_without_crashing(tokens in prop::collection::vec(0usize..1000, 0..80)) {
            let source: String = tokens.into_iter().map(|i| TOKENS[i % TOKENS.len()]).collect();
            prop_assert!(render_deep_stack(source).is_ok());
        }

        #[test]
        fn nesting_at_any_depth_is_refused_or_renders(depth in 0usize..120, kind in 0usize..4) {
            let source = match kind {
                0 => format!("{}x{}", "{{#if name}}".repeat(depth), "{{/if}}".repeat(depth)),
                1 => format!("{}x{}", "{{#each items}}".repeat(depth), "{{/each}}".repeat(depth)),
                2 => format!("{{{{upper {}name{}}}}}", "(trim ".repeat(depth), ")".repeat(depth)),
                _ => (0..depth).map(|i| format!("{{{{#*inline \"p{i}\"}}}}{{{{> p{}}}}}{{{{/inline}}}}", i + 1)).collect::<String>()
                    + &format!("{{{{#*inline \"p{depth}\"}}}}end{{{{/inline}}}}{{{{> p0}}}}"),
            };
            prop_assert!(render_deep_stack(source).is_ok());
        }
    }
}
