//! The message bus from the terminal: topics and their dead letters,
//! subscriptions, publishing one message and pulling a subscription's
//! messages. Each verb is one or two calls of the `/api/v1/topics`,
//! `/api/v1/subscriptions` and `/api/v1/messages` routes (docs/MESSAGING.md).

use awc::http::Method;
use serde_json::{json, Map, Value};

use super::api::Api;
use super::by_id::one_by_id;
use super::commands::{SubscriptionsCommand, TopicsCommand};
use super::listings::{done, page_footer, show};
use super::output::{cell, counted, say, when, Out};
use super::{key_values, read_input, segment, Exit, Failure};

/// What `hotswap publish` sends.
pub(super) struct Publication {
    pub topic: String,
    pub payload: Option<String>,
    pub headers: Vec<String>,
    pub partition_key: Option<String>,
    pub priority: Option<u8>,
    pub message_id: Option<String>,
}

/// What `hotswap consume` asks for.
pub(super) struct Pull {
    pub topic: String,
    pub subscription: String,
    pub max: u32,
    pub wait: Option<std::time::Duration>,
    pub ack: bool,
}

pub(super) async fn topics(api: &Api, out: Out, command: Option<TopicsCommand>) -> Result<Exit, Failure> {
    let Some(command) = command else { return list_topics(api, out).await };
    match command {
        TopicsCommand::Create {
            name,
            topic_type,
            guarantee,
            retention,
            partitions,
            routing,
            ordered,
            schema,
            description,
        } => {
            let mut body = json!({ "name": name, "type": topic_type, "config": { "ordered": ordered } });
            let mut optional = |key: &str, value: Option<Value>| {
                if let (Some(value), Some(map)) = (value, body.as_object_mut()) {
                    map.insert(key.to_string(), value);
                }
            };
            optional("deliveryGuarantee", guarantee.map(Value::from));
            optional("retentionPeriod", retention.map(Value::from));
            optional("partitionCount", partitions.map(Value::from));
            optional("schemaId", schema.map(Value::from));
            optional("description", description.map(Value::from));
            if let Some(routing) = routing {
                body["config"]["routingStrategy"] = routing.into();
            }
            let topic = api.post("/api/v1/topics", &body).await?.body;
            if out.json() {
                out.print_json(&topic);
            } else {
                say!(
                    "created topic {} ({}, {}, routed {}, kept {})",
                    cell(&topic["name"]),
                    cell(&topic["type"]),
                    cell(&topic["deliveryGuarantee"]),
                    cell(&topic["effectiveRoutingStrategy"]),
                    cell(&topic["retentionPeriod"])
                );
            }
            Ok(Exit::Ok)
        }
        TopicsCommand::Show { name } => show_topic(api, out, &name).await,
        TopicsCommand::Delete { name } => {
            api.call(Method::DELETE, &topic_path(&name, ""), None).await?;
            done(out, json!({ "deleted": name }), &format!("deleted topic {name}"))
        }
        TopicsCommand::Dlq { name, page, page_size } => {
            let offset = u64::from(page - 1) * u64::from(page_size);
            let path = topic_path(&name, &format!("/dlq?limit={page_size}&offset={offset}"));
            api.require_token()?;
            let answer = api.call(Method::GET, &path, None).await?;
            let letters = answer.body;
            let headers = ["MESSAGE ID", "SUBSCRIPTION", "ATTEMPTS", "DEAD-LETTERED", "REASON"];
            let exit = show(out, &letters, &letters, &headers, None, |d| {
                vec![
                    cell(&d["messageId"]),
                    cell(&d["subscriptionId"]),
                    cell(&d["deliveryAttempts"]),
                    when(&d["deadLetteredAt"]),
                    cell(&d["reason"]),
                ]
            });
            let shown = letters.as_array().map_or(0, Vec::len);
            page_footer(out, "dead letters", page, page_size, shown, answer.total);
            Ok(exit)
        }
        TopicsCommand::Replay { name, message_id } => {
            let path = topic_path(&name, &format!("/dlq/{}/replay", segment(&message_id)));
            api.post(&path, &json!({})).await?;
            let line = format!("replayed {message_id}: it is delivered to its subscription again");
            done(out, json!({ "replayed": message_id, "topicName": name }), &line)
        }
    }
}

fn topic_path(name: &str, rest: &str) -> String {
    format!("/api/v1/topics/{}{rest}", segment(name))
}

async fn list_topics(api: &Api, out: Out) -> Result<Exit, Failure> {
    let topics = api.get("/api/v1/topics").await?;
    let headers = ["NAME", "TYPE", "GUARANTEE", "ROUTING", "PARTITIONS", "RETENTION", "SCHEMA"];
    Ok(show(out, &topics, &topics, &headers, None, |t| {
        vec![
            cell(&t["name"]),
            cell(&t["type"]),
            cell(&t["deliveryGuarantee"]),
            cell(&t["effectiveRoutingStrategy"]),
            cell(&t["partitionCount"]),
            cell(&t["retentionPeriod"]),
            cell(&t["schemaId"]),
        ]
    }))
}

/// The topic, its counters, and the backlog of each subscription.
async fn show_topic(api: &Api, out: Out, name: &str) -> Result<Exit, Failure> {
    let topic = api.get(&topic_path(name, "")).await?;
    let metrics = api.get(&topic_path(name, "/metrics")).await?;
    if out.json() {
        out.print_json(&json!({ "topic": topic, "metrics": metrics }));
        return Ok(Exit::Ok);
    }
    say!(
        "{}: {}, {}, routed {}, {}, kept {}{}",
        cell(&topic["name"]),
        cell(&topic["type"]),
        cell(&topic["deliveryGuarantee"]),
        cell(&topic["effectiveRoutingStrategy"]),
        counted(topic["partitionCount"].as_u64().unwrap_or(0), "partition"),
        cell(&topic["retentionPeriod"]),
        if topic["config"]["ordered"] == Value::Bool(true) { ", ordered" } else { "" }
    );
    if let Some(schema) = topic["schemaId"].as_str() {
        say!("messages must match schema {schema}");
    }
    let counters = ["published", "delivered", "acknowledged", "failed", "deadLettered", "unrouted"];
    let counted: Vec<String> = counters.iter().map(|c| format!("{} {}", cell(&metrics[*c]), words(c))).collect();
    say!("{}", counted.join(", "));
    match metrics["oldestUnackedAgeMs"].as_i64() {
        Some(age) if age >= 1000 => {
            say!("the oldest message not yet acknowledged is {} old", humantime::format_duration(millis(age)))
        }
        Some(_) => say!("the oldest message not yet acknowledged is under a second old"),
        None => {}
    }
    let depth: Vec<Vec<String>> = metrics["depth"]
        .as_object()
        .map(Map::iter)
        .into_iter()
        .flatten()
        .map(|(subscription, waiting)| vec![subscription.clone(), cell(waiting)])
        .collect();
    out.table(&["SUBSCRIPTION", "WAITING"], &depth, None);
    Ok(Exit::Ok)
}

/// "deadLettered" → "dead lettered".
fn words(camel: &str) -> String {
    camel.chars().flat_map(|c| if c.is_uppercase() { vec![' ', c.to_ascii_lowercase()] } else { vec![c] }).collect()
}

/// Milliseconds as a duration to print, to the second.
fn millis(ms: i64) -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(ms / 1000).unwrap_or(0))
}

pub(super) async fn subscriptions(
    api: &Api,
    out: Out,
    topic: Option<String>,
    command: Option<SubscriptionsCommand>,
) -> Result<Exit, Failure> {
    let Some(command) = command else { return list_subscriptions(api, out, topic.as_deref()).await };
    match command {
        SubscriptionsCommand::Create { topic, group, push, max_retries, ack_timeout, headers, payload_query } => {
            let mut body = json!({
                "topicName": topic,
                "consumerGroup": group,
                "type": if push.is_some() { "Push" } else { "Pull" },
            });
            if let Some(url) = push {
                body["consumerEndpoint"] = url.into();
            }
            if let Some(retries) = max_retries {
                body["maxRetries"] = retries.into();
            }
            if let Some(timeout) = ack_timeout {
                body["ackTimeout"] = timeout.into();
            }
            if !headers.is_empty() || payload_query.is_some() {
                body["filter"] =
                    json!({ "headerMatches": key_values("--header", &headers)?, "payloadQuery": payload_query });
            }
            let made = api.post("/api/v1/subscriptions", &body).await?.body;
            let line = format!(
                "subscribed {} to {} ({}): id {}",
                cell(&made["consumerGroup"]),
                cell(&made["topicName"]),
                cell(&made["type"]),
                cell(&made["subscriptionId"])
            );
            done(out, made, &line)
        }
        SubscriptionsCommand::Pause { id } => steer(api, out, &id, "pause").await,
        SubscriptionsCommand::Resume { id } => steer(api, out, &id, "resume").await,
        SubscriptionsCommand::Delete { id } => {
            let id = subscription_id(api, &id).await?;
            api.call(Method::DELETE, &format!("/api/v1/subscriptions/{}", segment(&id)), None).await?;
            done(out, json!({ "deleted": id }), &format!("deleted subscription {id} and its backlog"))
        }
    }
}

async fn list_subscriptions(api: &Api, out: Out, topic: Option<&str>) -> Result<Exit, Failure> {
    let path = match topic {
        Some(topic) => format!("/api/v1/subscriptions?topicName={}", segment(topic)),
        None => "/api/v1/subscriptions".to_string(),
    };
    let found = api.get(&path).await?;
    let headers = ["ID", "TOPIC", "GROUP", "TYPE", "STATE", "RETRIES", "ACK TIMEOUT", "ENDPOINT"];
    Ok(show(out, &found, &found, &headers, None, |s| {
        let state = if s["paused"] == Value::Bool(true) { "paused" } else { "active" };
        let endpoint = s["consumerEndpoint"].as_str().filter(|e| !e.is_empty()).unwrap_or("-");
        vec![
            cell(&s["subscriptionId"]),
            cell(&s["topicName"]),
            cell(&s["consumerGroup"]),
            cell(&s["type"]),
            state.to_string(),
            cell(&s["maxRetries"]),
            cell(&s["ackTimeout"]),
            endpoint.to_string(),
        ]
    }))
}

/// The id of the subscription `which` names (its id or the start of it).
async fn subscription_id(api: &Api, which: &str) -> Result<String, Failure> {
    let all = api.get("/api/v1/subscriptions").await?;
    one_by_id(&all, "subscriptionId", which, "subscription", "hotswap subscriptions")
}

async fn steer(api: &Api, out: Out, which: &str, verb: &str) -> Result<Exit, Failure> {
    let id = subscription_id(api, which).await?;
    let changed = api.post(&format!("/api/v1/subscriptions/{}/{verb}", segment(&id)), &json!({})).await?.body;
    let line = match verb {
        "pause" => format!("paused subscription {id}: its messages wait until it is resumed"),
        _ => format!("resumed subscription {id}"),
    };
    done(out, changed, &line)
}

pub(super) async fn publish(api: &Api, out: Out, publication: Publication) -> Result<Exit, Failure> {
    let payload = match publication.payload.as_deref() {
        Some(payload) if payload != "-" => payload.to_string(),
        _ => standard_input()?,
    };
    let mut body = json!({
        "topicName": publication.topic,
        "payload": payload,
        "headers": key_values("--header", &publication.headers)?,
    });
    for (key, value) in [
        ("partitionKey", publication.partition_key.map(Value::from)),
        ("priority", publication.priority.map(Value::from)),
        ("messageId", publication.message_id.map(Value::from)),
    ] {
        if let Some(value) = value {
            body[key] = value;
        }
    }
    let answer = api.post("/api/v1/messages", &body).await?;
    let message = answer.body;
    let routed = message["routedTo"].as_array().map_or(0, Vec::len);
    let repeat = if answer.status.as_u16() == 200 { " (a repeat: the topic kept the first)" } else { "" };
    let line = format!(
        "published {} to {}, routed to {}{repeat}",
        cell(&message["messageId"]),
        cell(&message["topicName"]),
        counted(routed as u64, "subscription")
    );
    done(out, message, &line)
}

/// The payload piped in, without the line ending `echo` adds.
fn standard_input() -> Result<String, Failure> {
    let payload = read_input()?;
    let payload = payload.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&payload);
    Ok(payload.to_string())
}

pub(super) async fn consume(api: &Api, out: Out, pull: Pull) -> Result<Exit, Failure> {
    let id = subscription_id(api, &pull.subscription).await?;
    let wait_ms = pull.wait.map_or(0, |w| w.as_millis());
    let path = format!(
        "/api/v1/messages/consume/{}?subscriptionId={}&max={}&waitMs={wait_ms}",
        segment(&pull.topic),
        segment(&id),
        pull.max
    );
    let answer = api.get(&path).await?;
    let messages: Vec<&Value> = answer["messages"].as_array().into_iter().flatten().collect();
    if out.json() {
        out.print_json(&answer);
    } else if messages.is_empty() {
        say!("no message waits for subscription {id}");
    } else {
        let rows: Vec<Vec<String>> = messages
            .iter()
            .map(|m| vec![cell(&m["messageId"]), cell(&m["deliveryAttempts"]), cell(&m["payload"])])
            .collect();
        out.table(&["MESSAGE ID", "ATTEMPT", "PAYLOAD"], &rows, None);
    }
    if !pull.ack {
        if !out.json() && !messages.is_empty() {
            let hint = "not acknowledged: they are delivered again after the subscription's ack timeout \
                 (--ack acknowledges; `hotswap ack`/`nack ID… -s SUBSCRIPTION` settles them later)";
            say!("{}", out.dim(hint));
        }
        return Ok(Exit::Ok);
    }
    for message in &messages {
        let path = format!("/api/v1/messages/{}/ack?subscriptionId={}", segment(&cell(&message["messageId"])), id);
        api.post(&path, &json!({})).await?;
    }
    if !out.json() && !messages.is_empty() {
        say!("acknowledged {}", messages.len());
    }
    Ok(Exit::Ok)
}

/// What `hotswap ack` and `hotswap nack` do with each message.
pub(super) enum Settle {
    Ack,
    Nack { reason: Option<String>, requeue: bool },
}

/// Acknowledges or refuses each message of `messages` for the subscription,
/// in order; the first the server refuses (an expired lease: 409) stops the
/// rest, and the error says which one.
pub(super) async fn settle(
    api: &Api,
    out: Out,
    subscription: &str,
    messages: &[String],
    settle: Settle,
) -> Result<Exit, Failure> {
    let id = subscription_id(api, subscription).await?;
    let (verb, body, done_word) = match &settle {
        Settle::Ack => ("ack", json!({}), "acknowledged"),
        Settle::Nack { reason, requeue } => {
            let mut body = json!({ "requeue": requeue });
            if let Some(reason) = reason {
                body["reason"] = reason.clone().into();
            }
            ("nack", body, if *requeue { "refused" } else { "dead-lettered" })
        }
    };
    for (i, message) in messages.iter().enumerate() {
        let path = format!("/api/v1/messages/{}/{verb}?subscriptionId={}", segment(message), segment(&id));
        // The server's refusal names the message; the count says what was settled already.
        api.post(&path, &body).await.map_err(|failure| match i {
            0 => failure,
            _ => failure.context(&format!("{i} {done_word}, then")),
        })?;
    }
    let mut summary = Map::new();
    summary.insert(done_word.to_string(), json!(messages));
    let summary = Value::Object(summary);
    let line = format!("{done_word} {} for subscription {id}", counted(messages.len() as u64, "message"));
    done(out, summary, &line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_as_words() {
        assert_eq!(words("deadLettered"), "dead lettered");
        assert_eq!(words("published"), "published");
        assert_eq!(millis(61_999), std::time::Duration::from_secs(61));
        assert_eq!(millis(-5), std::time::Duration::ZERO);
    }
}
