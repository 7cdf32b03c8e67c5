//! CloudFormation: the tenant's stack `{slug}-{environment}-website`. Created when missing, updated when
//! it exists (an update with no changes is success), monitored while in progress — across steps and
//! redeliveries, never created twice — and, when it fails, explained by the failing resource and its
//! reason taken from the stack events.

use std::time::Duration;

use aws_sdk_cloudformation::{
    Client,
    types::{Parameter, Stack, StackEvent, Tag},
};
use backon::BackoffBuilder;
use tokio::time::Instant;

use super::{error_code, sdk_error};
use crate::{
    RetryPolicy,
    error::{ErrorCode, StepError},
    keepalive::KeepAlive,
};

/// Where the stack template comes from: a file or `s3://bucket/key`.
#[derive(Debug, Clone)]
pub enum TemplateSource {
    File(std::path::PathBuf),
    S3 { client: aws_sdk_s3::Client, bucket: String, key: String },
}

/// Where a stack stands, from its status alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    InProgress,
    Succeeded,
    /// Terminal failure; the string is the status.
    Failed(String),
    /// Deleted (or never created).
    Gone,
}

/// Reads a stack status as Landlord must act on it.
pub fn phase(status: &str) -> Phase {
    match status {
        s if s.ends_with("_IN_PROGRESS") => Phase::InProgress,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => Phase::Succeeded,
        "DELETE_COMPLETE" => Phase::Gone,
        other => Phase::Failed(other.to_owned()),
    }
}

/// The root cause of a failed stack: the oldest `*_FAILED` resource event with a reason, skipping the
/// "cancelled" events that other resources' failures cause and the stack's own summary event. Events
/// arrive newest first, as `DescribeStackEvents` returns them.
pub fn failure_reason(stack_name: &str, events: &[StackEvent]) -> Option<String> {
    events
        .iter()
        .rev()
        .filter(|e| e.resource_status().is_some_and(|s| s.as_str().ends_with("_FAILED")))
        .filter(|e| e.logical_resource_id() != Some(stack_name))
        .filter_map(|e| {
            let reason = e.resource_status_reason()?;
            (!reason.contains("cancelled")).then(|| {
                format!("{} ({}): {reason}", e.logical_resource_id().unwrap_or("?"), e.resource_type().unwrap_or("?"))
            })
        })
        .next()
}

/// A deployed stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    pub stack_id: String,
    pub outputs: serde_json::Value,
}

/// A stack that failed, with what to tell a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stack_id: Option<String>,
    pub reason: String,
}

#[derive(Debug)]
pub struct Stacks {
    pub client: Client,
    pub template: TemplateSource,
    pub environment: String,
    /// Polling schedule while a stack is in progress.
    pub poll: RetryPolicy,
}

/// Why a deploy did not finish.
#[derive(Debug)]
pub enum DeployError {
    /// The stack failed; it is left for a person (or a retry, which replaces a failed creation).
    Failed(Failure),
    Step(StepError),
}

impl From<StepError> for DeployError {
    fn from(e: StepError) -> Self {
        Self::Step(e)
    }
}

impl Stacks {
    pub fn stack_name(&self, slug: &str) -> String {
        format!("{slug}-{}-website", self.environment)
    }

    async fn template_body(&self) -> Result<String, StepError> {
        match &self.template {
            TemplateSource::File(path) => tokio::fs::read_to_string(path).await.map_err(|e| {
                StepError::permanent(
                    ErrorCode::StackTemplate,
                    format!("cannot read stack template {}: {e}", path.display()),
                )
            }),
            TemplateSource::S3 { client, bucket, key } => {
                let out = client.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
                    sdk_error(ErrorCode::StackTemplate, &format!("reading stack template s3://{bucket}/{key}"), &e)
                })?;
                let bytes = out.body.collect().await.map_err(|e| {
                    StepError::transient(
                        ErrorCode::StackTemplate,
                        format!("reading stack template s3://{bucket}/{key}: {e}"),
                    )
                })?;
                String::from_utf8(bytes.to_vec()).map_err(|_| {
                    StepError::permanent(ErrorCode::StackTemplate, format!("s3://{bucket}/{key} is not text"))
                })
            }
        }
    }

    /// The stack, or `None` when it does not exist.
    pub async fn describe(&self, name: &str) -> Result<Option<Stack>, StepError> {
        match self.client.describe_stacks().stack_name(name).send().await {
            Ok(out) => Ok(out.stacks().first().cloned()),
            Err(e) if error_code(&e) == Some("ValidationError") && format!("{e:?}").contains("does not exist") => {
                Ok(None)
            }
            Err(e) => Err(sdk_error(ErrorCode::StackDescribe, &format!("describing stack {name}"), &e)),
        }
    }

    /// Creates or updates the stack with `parameters` and waits for it until `deadline`. Past the
    /// deadline the error is transient: the next attempt finds the stack in progress and monitors it.
    pub async fn deploy(
        &self,
        name: &str,
        parameters: &[(&str, String)],
        tags: &[(&str, String)],
        request_token: &str,
        alive: &dyn KeepAlive,
        deadline: Instant,
    ) -> Result<Deployed, DeployError> {
        let params: Vec<Parameter> =
            parameters.iter().map(|(k, v)| Parameter::builder().parameter_key(*k).parameter_value(v).build()).collect();
        let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect();
        let existing = self.describe(name).await?;
        let status = existing.as_ref().and_then(|s| s.stack_status()).map(|s| s.as_str().to_owned());
        match status.as_deref().map(phase) {
            None | Some(Phase::Gone) => self.create(name, params, tags, request_token).await?,
            Some(Phase::InProgress) => {
                tracing::info!(stack = name, "stack already in progress; monitoring it")
            }
            Some(Phase::Failed(s)) if s == "ROLLBACK_COMPLETE" || s == "ROLLBACK_FAILED" => {
                // A failed creation cannot be updated; it was reported when it failed, and a retry replaces it.
                tracing::info!(stack = name, status = %s, "replacing a stack whose creation failed");
                self.delete_and_wait(name, alive, deadline).await?;
                self.create(name, params, tags, request_token).await?;
            }
            Some(_) => {
                let body = self.template_body().await?;
                let sent = self
                    .client
                    .update_stack()
                    .stack_name(name)
                    .template_body(body)
                    .set_parameters(Some(params))
                    .set_tags(Some(tags))
                    .send()
                    .await;
                match sent {
                    Ok(_) => {}
                    Err(e) if format!("{e:?}").contains("No updates are to be performed") => {
                        return Ok(self.deployed(existing.as_ref().expect("status came from it")));
                    }
                    Err(e) => {
                        return Err(sdk_error(ErrorCode::StackUpdate, &format!("updating stack {name}"), &e).into());
                    }
                }
            }
        }
        let stack = self.wait(name, alive, deadline).await?;
        Ok(self.deployed(&stack))
    }

    async fn create(
        &self,
        name: &str,
        params: Vec<Parameter>,
        tags: Vec<Tag>,
        request_token: &str,
    ) -> Result<(), StepError> {
        let body = self.template_body().await?;
        let sent = self
            .client
            .create_stack()
            .stack_name(name)
            .template_body(body)
            .set_parameters(Some(params))
            .set_tags(Some(tags))
            .client_request_token(request_token)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Created by an attempt that died before recording it: monitor that one.
            Err(e) if error_code(&e) == Some("AlreadyExistsException") => Ok(()),
            Err(e) => Err(sdk_error(ErrorCode::StackCreate, &format!("creating stack {name}"), &e)),
        }
    }

    fn deployed(&self, stack: &Stack) -> Deployed {
        let outputs = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), serde_json::Value::from(o.output_value()?))))
            .collect::<serde_json::Map<_, _>>();
        Deployed { stack_id: stack.stack_id().unwrap_or_default().to_owned(), outputs: outputs.into() }
    }

    /// Polls the stack with backoff, keeping the message alive, until it settles or `deadline` passes.
    pub async fn wait(&self, name: &str, alive: &dyn KeepAlive, deadline: Instant) -> Result<Stack, DeployError> {
        let mut delays = self.poll.backoff().build();
        loop {
            let stack = self.describe(name).await?;
            let status = stack.as_ref().and_then(|s| s.stack_status()).map(|s| s.as_str().to_owned());
            match (stack, status.as_deref().map(phase)) {
                (Some(stack), Some(Phase::Succeeded)) => return Ok(stack),
                (Some(stack), Some(Phase::Failed(status))) => {
                    let events = self.events(name).await?;
                    let cause = failure_reason(name, &events)
                        .or_else(|| stack.stack_status_reason().map(str::to_owned))
                        .unwrap_or_else(|| "no reason given".into());
                    let reason = format!("stack {name} ended {status}: {cause}");
                    return Err(DeployError::Failed(Failure { stack_id: stack.stack_id().map(str::to_owned), reason }));
                }
                (_, None | Some(Phase::Gone)) => {
                    return Err(StepError::transient(
                        ErrorCode::StackGone,
                        format!("stack {name} disappeared while being deployed"),
                    )
                    .into());
                }
                (Some(_), Some(Phase::InProgress)) | (None, Some(_)) => {}
            }
            alive.touch().await;
            let delay = delays.next().unwrap_or(Duration::from_millis(self.poll.max_delay_ms));
            if Instant::now() + delay > deadline {
                return Err(StepError::transient(
                    ErrorCode::StackInProgress,
                    format!("stack {name} is still {}; it stays monitored", status.unwrap_or_default()),
                )
                .into());
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn events(&self, name: &str) -> Result<Vec<StackEvent>, StepError> {
        let out = self
            .client
            .describe_stack_events()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(ErrorCode::StackEvents, &format!("reading events of stack {name}"), &e))?;
        Ok(out.stack_events().to_vec())
    }

    /// Deletes the stack and waits until it is gone (missing is fine).
    pub async fn delete_and_wait(&self, name: &str, alive: &dyn KeepAlive, deadline: Instant) -> Result<(), StepError> {
        if self.describe(name).await?.is_none() {
            return Ok(());
        }
        self.client
            .delete_stack()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(ErrorCode::StackDelete, &format!("deleting stack {name}"), &e))?;
        let mut delays = self.poll.backoff().build();
        loop {
            let status = self.describe(name).await?.and_then(|s| s.stack_status().map(|s| s.as_str().to_owned()));
            match status.as_deref().map(phase) {
                None | Some(Phase::Gone) => return Ok(()),
                Some(Phase::Failed(s)) => {
                    return Err(StepError::permanent(
                        ErrorCode::StackDelete,
                        format!("stack {name} could not be deleted: {s}"),
                    ));
                }
                _ => {}
            }
            alive.touch().await;
            let delay = delays.next().unwrap_or(Duration::from_millis(self.poll.max_delay_ms));
            if Instant::now() + delay > deadline {
                return Err(StepError::transient(
                    ErrorCode::StackInProgress,
                    format!("stack {name} is still being deleted"),
                ));
            }
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::types::ResourceStatus;

    use super::*;

    #[test]
    fn statuses_map_to_phases() {
        assert_eq!(phase("CREATE_IN_PROGRESS"), Phase::InProgress);
        assert_eq!(phase("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"), Phase::InProgress);
        assert_eq!(phase("UPDATE_COMPLETE"), Phase::Succeeded);
        assert_eq!(phase("ROLLBACK_COMPLETE"), Phase::Failed("ROLLBACK_COMPLETE".into()));
        assert_eq!(phase("UPDATE_ROLLBACK_COMPLETE"), Phase::Failed("UPDATE_ROLLBACK_COMPLETE".into()));
        assert_eq!(phase("DELETE_COMPLETE"), Phase::Gone);
    }

    fn event(id: &str, kind: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent::builder()
            .logical_resource_id(id)
            .resource_type(kind)
            .resource_status(ResourceStatus::from(status))
            .set_resource_status_reason(reason.map(str::to_owned))
            .build()
    }

    #[test]
    fn the_root_cause_is_the_oldest_real_failure() {
        // Newest first, as AWS returns them.
        let events = vec![
            event("s", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None),
            event("Queue", "AWS::SQS::Queue", "CREATE_FAILED", Some("Resource creation cancelled")),
            event("Bucket", "AWS::S3::Bucket", "CREATE_FAILED", Some("acme-assets already exists")),
            event(
                "s",
                "AWS::CloudFormation::Stack",
                "CREATE_FAILED",
                Some("The following resource(s) failed to create: [Bucket]"),
            ),
        ];
        assert_eq!(
            failure_reason("s", &events).as_deref(),
            Some("Bucket (AWS::S3::Bucket): acme-assets already exists")
        );
        assert_eq!(failure_reason("s", &events[..1]), None);
    }
}
