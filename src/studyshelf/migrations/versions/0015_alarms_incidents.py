"""alarms and incidents: request signals per process and minute, alarm rules and states, contacts, incidents
with their timelines and notices; signed outbox webhooks

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 01:04:00

Issue 17, points 3–5. (Another helper's migration may also follow 0014: renumber at merge.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import studyshelf.core.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarm_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("comparison", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("datapoints", sa.Integer(), nullable=False),
        sa.Column("datapoints_to_alarm", sa.Integer(), nullable=False),
        sa.Column("min_views", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("updated_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_rules")),
        sa.UniqueConstraint("key", name=op.f("uq_alarm_rules_key")),
    )
    op.create_table(
        "request_minutes",
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("minute", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors_5xx", sa.Integer(), nullable=False),
        sa.Column("buckets", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("instance", "minute", name=op.f("pk_request_minutes")),
    )
    op.create_index(op.f("ix_request_minutes_minute"), "request_minutes", ["minute"], unique=False)
    op.create_table(
        "alarm_contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=1000), nullable=False),
        sa.Column("escalation", sa.Boolean(), nullable=False),
        sa.Column("created_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_alarm_contacts_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_contacts")),
    )
    op.create_index(op.f("ix_alarm_contacts_org_id"), "alarm_contacts", ["org_id"], unique=False)
    op.create_table(
        "alarm_states",
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("since", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("recent", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("evaluated_minute", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alarm_rules.id"], name=op.f("fk_alarm_states_rule_id_alarm_rules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rule_id", "scope_key", name=op.f("pk_alarm_states")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("opened_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("acknowledged_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("mitigated_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("breached_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_incidents_owner_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alarm_rules.id"], name=op.f("fk_incidents_rule_id_alarm_rules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_org_id"), "incidents", ["org_id"], unique=False)
    op.create_index(op.f("ix_incidents_rule_id"), "incidents", ["rule_id"], unique=False)
    op.create_index(
        "uq_incidents_open",
        "incidents",
        ["rule_id", "scope_key"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_incident_events_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_events_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_events")),
    )
    op.create_index(op.f("ix_incident_events_incident_id"), "incident_events", ["incident_id"], unique=False)
    op.create_table(
        "incident_notices",
        sa.Column("outbox_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=1000), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("attempts_seen", sa.Integer(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_notices_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("outbox_id", name=op.f("pk_incident_notices")),
    )
    op.create_index(op.f("ix_incident_notices_incident_id"), "incident_notices", ["incident_id"], unique=False)
    op.create_index(op.f("ix_incident_notices_settled"), "incident_notices", ["settled"], unique=False)
    op.add_column("outbox", sa.Column("signed", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("outbox", "signed")
    op.drop_index(op.f("ix_incident_notices_settled"), table_name="incident_notices")
    op.drop_index(op.f("ix_incident_notices_incident_id"), table_name="incident_notices")
    op.drop_table("incident_notices")
    op.drop_index(op.f("ix_incident_events_incident_id"), table_name="incident_events")
    op.drop_table("incident_events")
    op.drop_index(
        "uq_incidents_open",
        table_name="incidents",
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.drop_index(op.f("ix_incidents_rule_id"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_org_id"), table_name="incidents")
    op.drop_table("incidents")
    op.drop_table("alarm_states")
    op.drop_index(op.f("ix_alarm_contacts_org_id"), table_name="alarm_contacts")
    op.drop_table("alarm_contacts")
    op.drop_index(op.f("ix_request_minutes_minute"), table_name="request_minutes")
    op.drop_table("request_minutes")
    op.drop_table("alarm_rules")
