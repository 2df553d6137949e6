// Written by hand to match migrations/; `diesel print-schema` (see diesel.toml)
// against a migrated database produces the same tables.

diesel::table! {
    runs (tenant_id, execution_id) {
        tenant_id -> Uuid,
        execution_id -> Uuid,
        module_name -> Text,
        version -> Text,
        target_environment -> Text,
        status -> Text,
        created_at -> Timestamptz,
        created_at_nanos -> Int2,
        finished_at -> Nullable<Timestamptz>,
        finished_at_nanos -> Nullable<Int2>,
        revision -> Int8,
        holds_module -> Bool,
        record -> Jsonb,
        saved_at -> Timestamptz,
        owner_epoch -> Int8,
        lease_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    run_node_changes (tenant_id, execution_id, seq) {
        tenant_id -> Uuid,
        execution_id -> Uuid,
        seq -> Int4,
        node_id -> Uuid,
        hostname -> Text,
        environment -> Text,
        before -> Jsonb,
    }
}

diesel::table! {
    task_leases (task) {
        task -> Text,
        owner -> Text,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    tenant_modules (tenant_id, module_name) {
        tenant_id -> Uuid,
        module_name -> Text,
    }
}

diesel::table! {
    tenant_runs_per_day (tenant_id, day) {
        tenant_id -> Uuid,
        day -> Date,
        runs -> Int8,
    }
}

diesel::table! {
    run_events (id) {
        id -> Int8,
        tenant_id -> Uuid,
        execution_id -> Uuid,
        at -> Timestamptz,
        at_nanos -> Int2,
        kind -> Text,
        message -> Text,
        data -> Jsonb,
    }
}

diesel::table! {
    nodes (tenant_id, node_id) {
        tenant_id -> Uuid,
        node_id -> Uuid,
        hostname -> Text,
        environment -> Text,
        updated_at -> Timestamptz,
        updated_at_nanos -> Int2,
        registered_at -> Timestamptz,
    }
}

diesel::table! {
    node_modules (tenant_id, node_id, module_name) {
        tenant_id -> Uuid,
        node_id -> Uuid,
        module_name -> Text,
        slots -> Jsonb,
    }
}

diesel::table! {
    cluster_samples (id) {
        id -> Int8,
        tenant_id -> Uuid,
        environment -> Text,
        at -> Timestamptz,
        at_nanos -> Int2,
        metrics -> Jsonb,
        healthy_nodes -> Int8,
        total_nodes -> Int8,
    }
}

diesel::table! {
    tenants (tenant_id) {
        tenant_id -> Uuid,
        name -> Text,
        subdomain -> Text,
        status -> Text,
        tier -> Text,
        created_at -> Timestamptz,
        suspended_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        metadata -> Jsonb,
        custom_domain -> Nullable<Text>,
        contact_email -> Text,
        quota -> Jsonb,
        updated_at -> Timestamptz,
        paused_runs -> Array<Uuid>,
        revision -> Int8,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        username -> Text,
        email -> Text,
        full_name -> Text,
        password_hash -> Text,
        roles -> Array<Nullable<Text>>,
        is_active -> Bool,
        failed_login_attempts -> Int4,
        lockout_end -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
        token_generation -> Int4,
    }
}

diesel::table! {
    revoked_tokens (tenant_id, jti) {
        tenant_id -> Uuid,
        jti -> Text,
        expires_at -> Timestamptz,
        revoked_at -> Timestamptz,
    }
}

diesel::table! {
    approvals (tenant_id, approval_id) {
        tenant_id -> Uuid,
        approval_id -> Uuid,
        execution_id -> Uuid,
        status -> Text,
        requested_at -> Timestamptz,
        timeout_at -> Timestamptz,
        decided_at -> Nullable<Timestamptz>,
        decided_by_id -> Nullable<Uuid>,
        decided_by_email -> Nullable<Text>,
        reason -> Nullable<Text>,
        module_name -> Text,
        version -> Text,
        target_environment -> Text,
        requester_id -> Nullable<Uuid>,
        requester_email -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        tenant_id -> Uuid,
        at -> Timestamptz,
        actor_id -> Nullable<Text>,
        actor_name -> Nullable<Text>,
        category -> Text,
        event_type -> Text,
        resource_type -> Nullable<Text>,
        resource_id -> Nullable<Text>,
        result -> Text,
        message -> Text,
        details -> Jsonb,
        trace_id -> Nullable<Text>,
        source_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    modules (tenant_id, module_name) {
        tenant_id -> Uuid,
        module_name -> Text,
        description -> Text,
        owner_email -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        metadata -> Jsonb,
    }
}

diesel::table! {
    signing_keys (tenant_id, key_id) {
        tenant_id -> Uuid,
        key_id -> Text,
        algorithm -> Text,
        public_key -> Text,
        description -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        name -> Text,
        bits -> Int4,
    }
}

diesel::table! {
    module_artifacts (tenant_id, module_name, version) {
        tenant_id -> Uuid,
        module_name -> Text,
        version -> Text,
        sha256 -> Text,
        size_bytes -> Int8,
        storage_uri -> Text,
        signature -> Nullable<Text>,
        signing_key_id -> Nullable<Text>,
        uploaded_by -> Nullable<Text>,
        uploaded_at -> Timestamptz,
        metadata -> Jsonb,
    }
}

diesel::table! {
    artifact_blobs (sha256) {
        sha256 -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    artifact_chunks (sha256, seq) {
        sha256 -> Text,
        seq -> Int4,
        bytes -> Bytea,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    runs,
    run_events,
    run_node_changes,
    nodes,
    node_modules,
    cluster_samples,
    tenants,
    users,
    revoked_tokens,
    approvals,
    audit_log,
    modules,
    signing_keys,
    module_artifacts,
    artifact_blobs,
    artifact_chunks,
    task_leases,
    tenant_modules,
    tenant_runs_per_day,
);
