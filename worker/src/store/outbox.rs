//! The mail outbox: a message is written once (its id is made from what it is about, so a repeated step
//! or a second worker writes nothing new), then a sender claims what is due, sends it, and records the
//! outcome; a failure is tried again later with a growing delay.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{Store, StoreError, entities::mail};

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub id: Uuid,
    /// `welcome` or `operator`.
    pub kind: &'a str,
    pub tenant_id: Option<&'a str>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

impl Store {
    /// Queues a message unless one with its id exists. True when this call queued it.
    pub async fn queue_mail(&self, m: NewMail<'_>) -> Result<bool, StoreError> {
        if mail::Entity::find_by_id(m.id.to_string()).one(self.connection()).await?.is_some() {
            return Ok(false);
        }
        let now = Utc::now();
        let row = mail::ActiveModel {
            id: Set(m.id.to_string()),
            kind: Set(m.kind.to_owned()),
            tenant_id: Set(m.tenant_id.map(str::to_owned)),
            recipient: Set(m.recipient.to_owned()),
            subject: Set(m.subject.to_owned()),
            body: Set(m.body.to_owned()),
            created_at: Set(now),
            attempts: Set(0),
            next_attempt_at: Set(now),
            sent_at: Set(None),
            last_error: Set(None),
            given_up_at: Set(None),
        };
        match row.insert(self.connection()).await {
            Ok(_) => Ok(true),
            // Another worker queued the same message a moment ago.
            Err(_) if mail::Entity::find_by_id(m.id.to_string()).one(self.connection()).await?.is_some() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Claims the message due first, until `hold_until` (a sender that dies lets it come due again then);
    /// `None` when nothing is due. A message another sender claimed first is not returned.
    pub async fn claim_due_mail(&self, hold_until: DateTime<Utc>) -> Result<Option<mail::Model>, StoreError> {
        let now = Utc::now();
        let due = mail::Entity::find()
            .filter(mail::Column::SentAt.is_null())
            .filter(mail::Column::GivenUpAt.is_null())
            .filter(mail::Column::NextAttemptAt.lte(now))
            .order_by_asc(mail::Column::NextAttemptAt)
            .limit(5)
            .all(self.connection())
            .await?;
        for mut m in due {
            let taken = mail::Entity::update_many()
                .col_expr(mail::Column::NextAttemptAt, Expr::value(hold_until))
                .filter(mail::Column::Id.eq(m.id.clone()))
                .filter(mail::Column::NextAttemptAt.eq(m.next_attempt_at))
                .filter(mail::Column::SentAt.is_null())
                .exec(self.connection())
                .await?;
            if taken.rows_affected == 1 {
                m.next_attempt_at = hold_until;
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Records a claimed message sent. False when the claim had lapsed and another sender holds it now.
    pub async fn mail_sent(&self, claimed: &mail::Model) -> Result<bool, StoreError> {
        let done = mail::Entity::update_many()
            .col_expr(mail::Column::SentAt, Expr::value(Utc::now()))
            .col_expr(mail::Column::Attempts, Expr::col(mail::Column::Attempts).add(1))
            .col_expr(mail::Column::LastError, Expr::value(Option::<String>::None))
            .filter(mail::Column::Id.eq(claimed.id.clone()))
            .filter(mail::Column::NextAttemptAt.eq(claimed.next_attempt_at))
            .exec(self.connection())
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Records a failed attempt of a claimed message; it is tried again at `retry_at`, or never when
    /// `None` (a failure that cannot clear: the error says why).
    pub async fn mail_failed(
        &self,
        claimed: &mail::Model,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        // Never again: marked given up (a far-future time would sort first on SQLite, where times are text).
        let now = Utc::now();
        mail::Entity::update_many()
            .col_expr(mail::Column::Attempts, Expr::col(mail::Column::Attempts).add(1))
            .col_expr(mail::Column::LastError, Expr::value(error.to_owned()))
            .col_expr(mail::Column::NextAttemptAt, Expr::value(retry_at.unwrap_or(now)))
            .col_expr(mail::Column::GivenUpAt, Expr::value(retry_at.is_none().then_some(now)))
            .filter(mail::Column::Id.eq(claimed.id.clone()))
            .filter(mail::Column::NextAttemptAt.eq(claimed.next_attempt_at))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Every message about `tenant_id` (tests and `landlord tenants show`).
    pub async fn mail_of(&self, tenant_id: &str) -> Result<Vec<mail::Model>, StoreError> {
        Ok(mail::Entity::find()
            .filter(mail::Column::TenantId.eq(tenant_id))
            .order_by_asc(mail::Column::CreatedAt)
            .all(self.connection())
            .await?)
    }
}
