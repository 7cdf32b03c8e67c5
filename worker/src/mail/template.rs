//! A message template: `Subject: …`, a blank line, then the body, with `{{name}}` placeholders. Values
//! are the tenant's (a store name a customer typed), so they are put in as text with control characters
//! removed: they can neither add a header line nor reach anything but the message.

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    subject: String,
    body: String,
}

/// The placeholders a template may use, with their values.
pub type Values<'a> = &'a [(&'a str, &'a str)];

/// What a template may name.
pub const NAMES: &[&str] = &["store_name", "store_url", "admin_url", "plan", "subdomain", "contact_email"];

fn clean(value: &str, newlines: bool) -> String {
    value.chars().filter(|c| !c.is_control() || (newlines && *c == '\n')).collect()
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").ok_or("it must start with `Subject: …` and a blank line")?;
        let subject = head.strip_prefix("Subject:").ok_or("its first line must be `Subject: …`")?.trim().to_owned();
        if subject.is_empty() || subject.contains('\n') {
            return Err("the subject must be one line".into());
        }
        let template = Self { subject, body: body.to_owned() };
        for part in [&template.subject, &template.body] {
            let mut rest = part.as_str();
            while let Some(at) = rest.find("{{") {
                let end = rest[at..].find("}}").ok_or("a `{{` without `}}`")?;
                let name = &rest[at + 2..at + end];
                if !NAMES.contains(&name) {
                    return Err(format!("{{{{{name}}}}} is not a placeholder; there are {}", NAMES.join(", ")));
                }
                rest = &rest[at + end + 2..];
            }
        }
        Ok(template)
    }

    /// The subject and body with `values` filled in (a name without a value becomes empty).
    pub fn render(&self, values: Values<'_>) -> (String, String) {
        // One pass over the template: a value that looks like a placeholder stays as it is.
        let fill = |text: &str, newlines: bool| {
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find("{{") {
                let Some(end) = rest[at..].find("}}") else { break };
                out.push_str(&rest[..at]);
                let name = &rest[at + 2..at + end];
                let value = values.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v);
                out.push_str(&clean(value, newlines));
                rest = &rest[at + end + 2..];
            }
            out.push_str(rest);
            out
        };
        (clean(&fill(&self.subject, false), false), fill(&self.body, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_a_subject_and_a_body_with_known_placeholders() {
        let t = Template::parse("Subject: {{store_name}} is ready\n\nSee {{store_url}}.\n").unwrap();
        let (subject, body) =
            t.render(&[("store_name", "Acme\r\nBcc: x@evil.example"), ("store_url", "https://acme.example")]);
        assert_eq!(subject, "AcmeBcc: x@evil.example is ready", "no header can be added");
        assert_eq!(body, "See https://acme.example.\n");
        assert!(Template::parse("Hello\n\nbody").unwrap_err().contains("Subject"));
        assert!(Template::parse("Subject: x\n\n{{password}}").unwrap_err().contains("not a placeholder"));
        assert!(Template::parse("Subject: x\n\n{{ store_name }}").is_err(), "names are exact");
        let (_, body) = t.render(&[("store_name", "x"), ("store_url", "{{admin_url}}")]);
        assert_eq!(body, "See {{admin_url}}.\n", "a value is never filled in again");
        assert!(Template::parse("Subject: x").is_err());
        let builtin = Template::parse(include_str!("welcome.txt")).unwrap();
        let (_, body) = builtin.render(&[("store_url", "https://s.example"), ("admin_url", "https://s.example/admin")]);
        assert!(body.contains("https://s.example/admin") && !body.contains("{{"), "{body}");
    }
}
