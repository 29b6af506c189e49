// The diesel schema shared by both backends. Keep it in step with
// migrations/sqlite and migrations/postgres (the test suite runs both).

diesel::table! {
    organizations (id) {
        id -> BigInt,
        name -> Text,
        kind -> Text,
        owner_user_id -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        password_hash -> Text,
        name -> Text,
        role -> Text,
        locale -> Text,
        organization_id -> Nullable<BigInt>,
        created_at -> BigInt,
        session_generation -> BigInt,
        sessions_ended_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        family -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    idempotency_keys (user_id, idempotency_key) {
        user_id -> BigInt,
        idempotency_key -> Text,
        fingerprint -> Text,
        created_at -> BigInt,
        status -> Nullable<Integer>,
        headers -> Nullable<Text>,
        body -> Nullable<Binary>,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::table! {
    browser_sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        csrf_token -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(browser_sessions -> users (user_id));

diesel::table! {
    case_counters (year) {
        year -> Integer,
        last -> BigInt,
    }
}

diesel::table! {
    cases (id) {
        id -> BigInt,
        number -> Text,
        organization_id -> BigInt,
        applicant_id -> Nullable<BigInt>,
        filed_by -> Nullable<BigInt>,
        title -> Text,
        description -> Text,
        product_type -> Text,
        stage -> Text,
        language -> Text,
        organization_name -> Text,
        organization_kind -> Text,
        status -> Text,
        resume_to -> Nullable<Text>,
        outcome -> Nullable<Text>,
        priority -> Nullable<Text>,
        confirmed_product_type -> Nullable<Text>,
        effective_product_type -> Text,
        route -> Nullable<Text>,
        refer_to -> Nullable<Text>,
        claimed_by -> Nullable<BigInt>,
        received_on -> Text,
        received_at -> BigInt,
        updated_at -> BigInt,
        triaged_at -> Nullable<BigInt>,
        closed_at -> Nullable<BigInt>,
        version -> BigInt,
        overdue_notified_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    case_categories (case_id, kind, category) {
        case_id -> BigInt,
        kind -> Text,
        category -> Text,
        effective -> Bool,
    }
}

diesel::table! {
    case_events (id) {
        id -> BigInt,
        case_id -> BigInt,
        at -> BigInt,
        actor_id -> Nullable<BigInt>,
        kind -> Text,
        from_status -> Nullable<Text>,
        to_status -> Nullable<Text>,
        detail -> Nullable<Text>,
        audience -> Text,
    }
}

diesel::table! {
    case_messages (id) {
        id -> BigInt,
        case_id -> BigInt,
        author_id -> BigInt,
        visibility -> Text,
        body -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    case_access_log (id) {
        id -> BigInt,
        case_id -> BigInt,
        user_id -> BigInt,
        at -> BigInt,
        what -> Text,
    }
}

diesel::table! {
    invitations (id) {
        id -> BigInt,
        organization_id -> BigInt,
        email -> Text,
        token_hash -> Text,
        invited_by -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        message_id -> Text,
        kind -> Text,
        case_id -> Nullable<BigInt>,
        recipient -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Nullable<Text>,
        calendar -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        locked_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        locale -> Nullable<Text>,
        link -> Nullable<Text>,
    }
}

diesel::table! {
    message_notices (case_id, user_id) {
        case_id -> BigInt,
        user_id -> BigInt,
        due_at -> BigInt,
        messages -> Integer,
        outbox_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    experts (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        affiliation -> Text,
        capacity -> Integer,
        paused_until -> Nullable<Text>,
        last_assigned_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    expert_expertise (expert_id, category) {
        expert_id -> BigInt,
        category -> Text,
        level -> Integer,
    }
}

diesel::table! {
    expert_product_types (expert_id, product_type) {
        expert_id -> BigInt,
        product_type -> Text,
    }
}

diesel::table! {
    expert_languages (expert_id, language) {
        expert_id -> BigInt,
        language -> Text,
    }
}

diesel::table! {
    expert_conflicts (expert_id, name) {
        expert_id -> BigInt,
        name -> Text,
        normalized -> Text,
    }
}

diesel::table! {
    assignments (id) {
        id -> BigInt,
        case_id -> BigInt,
        expert_id -> BigInt,
        role -> Text,
        status -> Text,
        assigned_by -> BigInt,
        created_at -> BigInt,
        responded_at -> Nullable<BigInt>,
        ended_at -> Nullable<BigInt>,
        decline_reason -> Nullable<Text>,
        terms_version -> Nullable<Text>,
        acknowledged_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    meetings (id) {
        id -> BigInt,
        case_id -> BigInt,
        expert_id -> BigInt,
        starts_at -> BigInt,
        duration_minutes -> Integer,
        mode -> Text,
        advice_summary -> Nullable<Text>,
        created_by -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        video_url -> Nullable<Text>,
        recorded -> Bool,
        notes -> Nullable<Text>,
    }
}

diesel::table! {
    support_plans (id) {
        id -> BigInt,
        case_id -> BigInt,
        revision -> Integer,
        body -> Text,
        author_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    password_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    stats_daily_cases (day, product_type) {
        day -> Text,
        product_type -> Text,
        cases -> BigInt,
    }
}

diesel::table! {
    stats_daily_categories (day, product_type, category) {
        day -> Text,
        product_type -> Text,
        category -> Text,
        cases -> BigInt,
    }
}

diesel::table! {
    stats_monthly_cases (month, product_type) {
        month -> Text,
        product_type -> Text,
        cases -> BigInt,
    }
}

diesel::table! {
    stats_monthly_categories (month, product_type, category) {
        month -> Text,
        product_type -> Text,
        category -> Text,
        cases -> BigInt,
    }
}

diesel::table! {
    /// A case closed as a duplicate, and its original (migration 000012).
    case_duplicates (case_id) {
        case_id -> BigInt,
        original_id -> BigInt,
        linked_at -> BigInt,
    }
}

diesel::table! {
    stats_daily_duplicates (day, product_type) {
        day -> Text,
        product_type -> Text,
        cases -> BigInt,
    }
}

diesel::table! {
    stats_daily_duplicate_categories (day, product_type, category) {
        day -> Text,
        product_type -> Text,
        category -> Text,
        cases -> BigInt,
    }
}

diesel::table! {
    stats_monthly_duplicates (month, product_type) {
        month -> Text,
        product_type -> Text,
        cases -> BigInt,
    }
}

diesel::table! {
    stats_monthly_duplicate_categories (month, product_type, category) {
        month -> Text,
        product_type -> Text,
        category -> Text,
        cases -> BigInt,
    }
}

diesel::joinable!(experts -> users (user_id));
diesel::joinable!(assignments -> experts (expert_id));
diesel::joinable!(assignments -> cases (case_id));
diesel::joinable!(meetings -> experts (expert_id));
diesel::joinable!(cases -> organizations (organization_id));
diesel::joinable!(case_categories -> cases (case_id));
diesel::joinable!(case_events -> cases (case_id));
diesel::joinable!(case_messages -> cases (case_id));
diesel::joinable!(case_access_log -> cases (case_id));

diesel::table! {
    holidays (day) {
        day -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    open_hours_settings (id) {
        id -> Integer,
        times -> Text,
        duration_minutes -> Integer,
        weekday_capacities -> Text,
        horizon_days -> Integer,
        updated_at -> BigInt,
    }
}

diesel::table! {
    open_hours_slots (id) {
        id -> BigInt,
        starts_at -> BigInt,
        ends_at -> BigInt,
        capacity -> Nullable<Integer>,
        booked -> Integer,
        closed -> Bool,
        closed_reason -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    open_hours_bookings (id) {
        id -> BigInt,
        slot_id -> BigInt,
        starts_at -> BigInt,
        ends_at -> BigInt,
        organization_id -> BigInt,
        applicant_id -> BigInt,
        topic -> Text,
        product_type -> Nullable<Text>,
        categories -> Text,
        language -> Text,
        status -> Text,
        case_id -> Nullable<BigInt>,
        attended -> Nullable<Bool>,
        note -> Nullable<Text>,
        reminder_mail_id -> Nullable<BigInt>,
        created_at -> BigInt,
        cancelled_at -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::joinable!(open_hours_bookings -> open_hours_slots (slot_id));
diesel::joinable!(open_hours_bookings -> organizations (organization_id));
diesel::joinable!(open_hours_bookings -> users (applicant_id));

diesel::allow_tables_to_appear_in_same_query!(
    cases,
    case_categories,
    case_events,
    case_messages,
    case_access_log,
    users,
    organizations,
    invitations,
    refresh_tokens,
    browser_sessions,
    outbox,
    message_notices,
    experts,
    expert_expertise,
    expert_product_types,
    expert_languages,
    expert_conflicts,
    assignments,
    meetings,
    support_plans,
    password_tokens,
    stats_daily_cases,
    stats_daily_categories,
    case_duplicates,
    holidays,
    open_hours_settings,
    open_hours_slots,
    open_hours_bookings,
);
