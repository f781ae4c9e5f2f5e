//! Finding the upload service after each handshake: disco#info on `upload_service` when it
//! is set (for its `max-file-size`), else disco#items on the server's domain — the
//! component's domain without its first label, `bot.example.com` → `example.com` — and
//! disco#info on at most [`MAX_ITEMS`] of them, the first with feature
//! `urn:xmpp:http:upload:0` taken. Each iq is waited for at most the component's `timeout`.

use std::sync::Arc;

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::{ask, UPLOAD_NS};
use crate::handle::upload_target::UploadService;
use crate::handle::ComponentHandle;
use crate::stanza::COMPONENT_NS;
use crate::xml::set_attr;

/// The items of the server's domain looked at, at most.
pub const MAX_ITEMS: usize = 32;
const INFO_NS: &str = "http://jabber.org/protocol/disco#info";
const ITEMS_NS: &str = "http://jabber.org/protocol/disco#items";
const DATA_NS: &str = "jabber:x:data";

/// Finds the component's upload service and records it (to be spawned after a handshake;
/// cancelled when the connection ends).
pub async fn discover(handle: Arc<ComponentHandle>) {
    let domain = handle.domain().to_string();
    let found = match handle.uploads().configured() {
        Some(jid) => {
            let jid = jid.to_string();
            let max_file_size = info(&handle, &jid).await.and_then(|i| i.max_file_size);
            Some(UploadService { jid, max_file_size })
        }
        None => search(&handle).await,
    };
    match &found {
        Some(service) => tracing::info!(
            "{domain}: uploads go to {} (max-file-size: {})",
            service.jid,
            service
                .max_file_size
                .map_or("not given".to_string(), |size| format!("{size} bytes"))
        ),
        None => tracing::info!("{domain}: no upload service found (set 'upload_service')"),
    }
    handle.uploads().set_service(found);
}

/// The server's domain a component's domain is under (`None` for a single label).
pub fn server_domain(component: &str) -> Option<&str> {
    component
        .split_once('.')
        .map(|(_, rest)| rest)
        .filter(|rest| !rest.is_empty())
}

async fn search(handle: &ComponentHandle) -> Option<UploadService> {
    let server = server_domain(handle.domain())?.to_string();
    let answer = ask(
        handle,
        query(ITEMS_NS),
        &server,
        handle.uploads().disco_timeout,
    )
    .await
    .ok()
    .flatten()?;
    for jid in items(&answer) {
        if let Some(info) = info(handle, &jid).await {
            if info.upload {
                return Some(UploadService {
                    jid,
                    max_file_size: info.max_file_size,
                });
            }
        }
    }
    None
}

fn query(ns: &str) -> Element {
    let mut iq = Element::bare("iq", COMPONENT_NS);
    set_attr(&mut iq, xml_ncname!("type"), "get");
    iq.append_child(Element::bare("query", ns));
    iq
}

/// What disco#info told of one entity.
#[derive(Debug, PartialEq, Eq)]
pub struct Info {
    pub upload: bool,
    pub max_file_size: Option<u64>,
}

async fn info(handle: &ComponentHandle, jid: &str) -> Option<Info> {
    let answer = ask(handle, query(INFO_NS), jid, handle.uploads().disco_timeout)
        .await
        .ok()
        .flatten()?;
    read_info(&answer)
}

/// The JIDs of a disco#items result, at most [`MAX_ITEMS`], without a node.
pub fn items(answer: &Element) -> Vec<String> {
    let Some(query) = answer
        .get_child("query", ITEMS_NS)
        .filter(|_| answer.attr("type") == Some("result"))
    else {
        return Vec::new();
    };
    query
        .children()
        .filter(|item| item.name() == "item" && item.attr("node").is_none())
        .filter_map(|item| item.attr("jid"))
        .take(MAX_ITEMS)
        .map(str::to_string)
        .collect()
}

/// Whether a disco#info result has XEP-0363's feature, and its `max-file-size`.
pub fn read_info(answer: &Element) -> Option<Info> {
    if answer.attr("type") != Some("result") {
        return None;
    }
    let query = answer.get_child("query", INFO_NS)?;
    let upload = query
        .children()
        .any(|c| c.name() == "feature" && c.attr("var") == Some(UPLOAD_NS));
    let max_file_size = query
        .children()
        .filter(|c| c.name() == "x" && c.ns() == DATA_NS)
        .filter(|form| field(form, "FORM_TYPE").as_deref() == Some(UPLOAD_NS))
        .find_map(|form| field(form, "max-file-size")?.trim().parse().ok());
    Some(Info {
        upload,
        max_file_size,
    })
}

fn field(form: &Element, var: &str) -> Option<String> {
    let field = form
        .children()
        .find(|c| c.name() == "field" && c.attr("var") == Some(var))?;
    Some(field.get_child("value", DATA_NS)?.text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_domain_is_the_components_without_its_first_label() {
        assert_eq!(server_domain("bot.localhost"), Some("localhost"));
        assert_eq!(
            server_domain("bot.chat.example.com"),
            Some("chat.example.com")
        );
        assert_eq!(server_domain("localhost"), None);
    }

    #[test]
    fn items_and_info_are_read() {
        let items_xml: Element = "<iq xmlns='jabber:component:accept' type='result'>\
            <query xmlns='http://jabber.org/protocol/disco#items'>\
            <item jid='conference.localhost'/><item jid='localhost' node='x'/>\
            <item jid='upload.localhost'/></query></iq>"
            .parse()
            .expect("valid");
        assert_eq!(
            items(&items_xml),
            ["conference.localhost", "upload.localhost"]
        );
        let info_xml: Element = "<iq xmlns='jabber:component:accept' type='result'>\
            <query xmlns='http://jabber.org/protocol/disco#info'>\
            <identity category='store' type='file'/><feature var='urn:xmpp:http:upload:0'/>\
            <x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
            <field var='max-file-size'><value>10485760</value></field></x></query></iq>"
            .parse()
            .expect("valid");
        assert_eq!(
            read_info(&info_xml),
            Some(Info {
                upload: true,
                max_file_size: Some(10_485_760)
            })
        );
        let error: Element = "<iq xmlns='jabber:component:accept' type='error'/>"
            .parse()
            .expect("valid");
        assert_eq!(read_info(&error), None);
        assert!(items(&error).is_empty());
    }
}
