-- The SQLite store of Tandem 0.6.9 .. 0.7.2, schema version 5: the DDL the tests build
-- stores from (reconstructed from upstream frumu-ai/tandem v0.7.2 orchestration_store.rs;
-- sqlite_sequence left out: SQLite creates it for the AUTOINCREMENT table).
CREATE TABLE automation_runs (
            run_id TEXT PRIMARY KEY,
            automation_id TEXT NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            deployment_id TEXT,
            status TEXT NOT NULL,
            is_hot INTEGER NOT NULL DEFAULT 1,
            run_json TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
         );
CREATE TABLE "automation_waits" (
            wait_id TEXT NOT NULL,
            goal_id TEXT,
            run_id TEXT NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            deployment_id TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            wait_json TEXT NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            PRIMARY KEY (wait_id, run_id, org_id, workspace_id, deployment_id)
         );
CREATE TABLE compensations (
            compensation_id TEXT PRIMARY KEY, goal_id TEXT, run_id TEXT, status TEXT NOT NULL,
            record_json TEXT NOT NULL, updated_at_ms INTEGER NOT NULL
         , org_id TEXT NOT NULL DEFAULT '', workspace_id TEXT NOT NULL DEFAULT '', deployment_id TEXT);
CREATE TABLE dead_letters (
            dead_letter_id TEXT PRIMARY KEY, goal_id TEXT, run_id TEXT, status TEXT NOT NULL,
            record_json TEXT NOT NULL, updated_at_ms INTEGER NOT NULL
         , org_id TEXT NOT NULL DEFAULT '', workspace_id TEXT NOT NULL DEFAULT '', deployment_id TEXT);
CREATE TABLE goal_projection_blobs (
            digest TEXT PRIMARY KEY,
            payload_json TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
         );
CREATE TABLE goal_run_links (
            goal_id TEXT NOT NULL,
            run_id TEXT NOT NULL UNIQUE,
            orchestration_node_id TEXT NOT NULL,
            orchestration_version INTEGER NOT NULL,
            hop_index INTEGER NOT NULL,
            parent_run_id TEXT,
            triggering_handoff_id TEXT UNIQUE,
            link_json TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            PRIMARY KEY (goal_id, hop_index)
         );
CREATE TABLE legacy_handoff_quarantine (
            source_path TEXT PRIMARY KEY,
            source_digest TEXT,
            error TEXT NOT NULL,
            quarantined_at_ms INTEGER NOT NULL
         );
CREATE TABLE legacy_handoffs (
            handoff_id TEXT PRIMARY KEY,
            source_path TEXT NOT NULL,
            status TEXT NOT NULL,
            consumed_by_run_id TEXT,
            handoff_json TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            imported_at_ms INTEGER NOT NULL
         );
CREATE TABLE long_running_goals (
            goal_id TEXT PRIMARY KEY,
            orchestration_id TEXT NOT NULL,
            orchestration_version INTEGER NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            deployment_id TEXT,
            status TEXT NOT NULL,
            active_run_id TEXT,
            goal_json TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
         );
CREATE TABLE migration_sources (
            source_kind TEXT NOT NULL, source_path TEXT NOT NULL, imported_at_ms INTEGER NOT NULL,
            record_count INTEGER NOT NULL, PRIMARY KEY (source_kind, source_path)
         );
CREATE TABLE orchestration_specs (
            orchestration_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            deployment_id TEXT,
            deployment_key TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            definition_json TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            published_at_ms INTEGER,
            PRIMARY KEY (org_id, workspace_id, deployment_key, orchestration_id, version)
         );
CREATE TABLE orchestration_tool_requests (
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            deployment_key TEXT NOT NULL DEFAULT '',
            operation TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            request_digest TEXT NOT NULL,
            response_json TEXT,
            created_at_ms INTEGER NOT NULL,
            completed_at_ms INTEGER,
            PRIMARY KEY (
                org_id, workspace_id, deployment_key, operation, idempotency_key
            )
         );
CREATE TABLE outbox_effects (
            effect_id TEXT PRIMARY KEY, goal_id TEXT, run_id TEXT, status TEXT NOT NULL,
            effect_json TEXT NOT NULL, updated_at_ms INTEGER NOT NULL
         , org_id TEXT NOT NULL DEFAULT '', workspace_id TEXT NOT NULL DEFAULT '', deployment_id TEXT);
CREATE TABLE schema_metadata (
            schema_version INTEGER NOT NULL
         );
CREATE TABLE stateful_events (
            event_id TEXT PRIMARY KEY, goal_id TEXT, run_id TEXT, seq INTEGER NOT NULL,
            event_json TEXT NOT NULL, created_at_ms INTEGER NOT NULL
         , org_id TEXT NOT NULL DEFAULT '', workspace_id TEXT NOT NULL DEFAULT '', deployment_id TEXT);
CREATE TABLE stateful_migration_attempts (
            attempt_id INTEGER PRIMARY KEY AUTOINCREMENT,
            migration_id TEXT NOT NULL,
            source_fingerprint TEXT NOT NULL,
            started_at_ms INTEGER NOT NULL,
            outcome TEXT,
            completed_at_ms INTEGER
         );
CREATE TABLE stateful_migrations (
            migration_id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            source_fingerprint TEXT NOT NULL,
            record_count INTEGER NOT NULL,
            started_at_ms INTEGER NOT NULL,
            completed_at_ms INTEGER
         );
CREATE TABLE stateful_snapshots (
            snapshot_id TEXT PRIMARY KEY, goal_id TEXT, run_id TEXT, seq INTEGER NOT NULL,
            snapshot_json TEXT NOT NULL, created_at_ms INTEGER NOT NULL
         , org_id TEXT NOT NULL DEFAULT '', workspace_id TEXT NOT NULL DEFAULT '', deployment_id TEXT);
CREATE TABLE tool_effects (
            effect_id TEXT PRIMARY KEY,
            goal_id TEXT,
            run_id TEXT,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            deployment_id TEXT,
            status TEXT NOT NULL,
            effect_json TEXT NOT NULL,
            updated_at_ms INTEGER NOT NULL
         );
CREATE TABLE wait_resolutions (
            wait_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, resolution_json TEXT NOT NULL,
            resolved_at_ms INTEGER NOT NULL, PRIMARY KEY (wait_id, idempotency_key)
         );
CREATE TABLE workflow_handoffs (
            handoff_id TEXT PRIMARY KEY,
            goal_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            deployment_id TEXT,
            source_run_id TEXT NOT NULL,
            target_automation_id TEXT NOT NULL,
            status TEXT NOT NULL,
            consumed_by_run_id TEXT UNIQUE,
            handoff_json TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            UNIQUE (goal_id, idempotency_key)
         );
CREATE INDEX idx_automation_runs_scope_status
            ON automation_runs (org_id, workspace_id, status);
CREATE INDEX idx_automation_waits_scope_status
            ON automation_waits (org_id, workspace_id, status);
CREATE INDEX idx_compensations_scope ON compensations (org_id, workspace_id);
CREATE INDEX idx_dead_letters_scope ON dead_letters (org_id, workspace_id);
CREATE INDEX idx_goals_scope_status
            ON long_running_goals (org_id, workspace_id, status);
CREATE INDEX idx_orchestration_scope_status
            ON orchestration_specs (org_id, workspace_id, status);
CREATE INDEX idx_outbox_effects_scope ON outbox_effects (org_id, workspace_id);
CREATE INDEX idx_stateful_events_goal
            ON stateful_events (goal_id);
CREATE UNIQUE INDEX idx_stateful_events_run_seq
            ON stateful_events (run_id, seq);
CREATE INDEX idx_stateful_events_scope ON stateful_events (org_id, workspace_id);
CREATE UNIQUE INDEX idx_stateful_snapshots_run_seq
            ON stateful_snapshots (run_id, seq);
CREATE INDEX idx_stateful_snapshots_scope ON stateful_snapshots (org_id, workspace_id);
CREATE INDEX idx_tool_effects_scope_status
            ON tool_effects (org_id, workspace_id, status);
CREATE INDEX idx_handoffs_scope_status
            ON workflow_handoffs (org_id, workspace_id, status);
-- schema_version: 5
-- journal_mode: wal
