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

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(organizations, users, refresh_tokens);
