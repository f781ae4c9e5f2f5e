//! The namespace prefixes in force while an element is read ([`Scope`]): declared by the
//! `xmlns` attributes of its start tags, looked up for each name, and undone as each element
//! closes; with the name checks and the error both readers (`parse`, `stream`) share.

use std::collections::{HashMap, HashSet};

use minidom::rxml::{Namespace, NcName};

use super::XmlError;

/// An element's text is not well-formed (namespaced) XML: why.
pub(super) fn malformed<T>(why: impl Into<Box<str>>) -> Result<T, XmlError> {
    Err(XmlError::Malformed(why.into()))
}

/// One attribute of a start tag: its name as written, its value decoded.
#[derive(Debug)]
pub struct Attribute<'a> {
    pub name: &'a str,
    pub value: String,
}

/// The namespace prefixes in force; the prefix `""` is the default namespace. Each prefix
/// finds its binding in one hash lookup, so an element with thousands of prefixes declared
/// costs as many lookups, not their square.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Each prefix's namespaces, innermost last.
    bindings: HashMap<Box<str>, Vec<Box<str>>>,
    /// The prefixes in the order they were declared, so that an element's declarations are
    /// undone when it closes.
    declared: Vec<Box<str>>,
}

impl Scope {
    /// A scope with `default` as the default namespace.
    pub fn new(default: &str) -> Scope {
        let mut scope = Scope::default();
        scope.bind("", default);
        scope
    }

    pub(crate) fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(Namespace::xml().as_str());
        }
        let namespaces = self.bindings.get(prefix)?;
        namespaces.last().map(|namespace| &**namespace)
    }

    /// How many bindings are in force: what [`Scope::truncate`] goes back to.
    pub(crate) fn len(&self) -> usize {
        self.declared.len()
    }

    /// Undoes the bindings made since the scope held `len` of them.
    pub(crate) fn truncate(&mut self, len: usize) {
        while self.declared.len() > len {
            let Some(prefix) = self.declared.pop() else {
                return;
            };
            if let Some(namespaces) = self.bindings.get_mut(&prefix) {
                namespaces.pop();
                if namespaces.is_empty() {
                    self.bindings.remove(&prefix);
                }
            }
        }
    }

    fn bind(&mut self, prefix: &str, namespace: &str) {
        self.bindings
            .entry(prefix.into())
            .or_default()
            .push(namespace.into());
        self.declared.push(prefix.into());
    }

    /// Applies the `xmlns` and `xmlns:p` attributes of a start tag.
    pub(crate) fn declare(&mut self, attributes: &[Attribute<'_>]) -> Result<(), XmlError> {
        // A prefix declared twice in one tag is an attribute given twice (XML §3.1). Most tags
        // declare one prefix at most: a set only from the second on.
        let mut first = None;
        let mut declared = HashSet::new();
        for attribute in attributes {
            // Namespaces in XML §3: `xml` is bound to its namespace (and may say so), which no
            // other prefix may be bound to.
            let to_xml = attribute.value == Namespace::xml().as_str();
            let prefix = match attribute.name.split_once(':') {
                None if attribute.name == "xmlns" && !to_xml => "",
                None if attribute.name == "xmlns" => {
                    return malformed("the XML namespace as the default namespace")
                }
                Some(("xmlns", prefix)) => {
                    check_ncname(prefix)?;
                    if attribute.value.is_empty()
                        || prefix == "xmlns"
                        || (prefix == "xml") != to_xml
                    {
                        return malformed(format!("cannot declare the prefix '{prefix}' so"));
                    }
                    prefix
                }
                _ => continue,
            };
            if let Some(one) = first {
                if declared.is_empty() {
                    declared.insert(one);
                }
                if !declared.insert(prefix) {
                    return malformed(format!("the prefix '{prefix}' declared twice"));
                }
            } else {
                first = Some(prefix);
            }
            if to_xml {
                continue;
            }
            self.bind(prefix, &attribute.value);
        }
        Ok(())
    }
}

pub(super) fn check_ncname(name: &str) -> Result<(), XmlError> {
    match NcName::try_from(name) {
        Ok(_) => Ok(()),
        Err(_) => malformed(format!("'{name}' is not a valid name")),
    }
}
