-- The store's read models, all written by the one `store` projector (one
-- writer, so the denormalised rm_store_agents rows never race their
-- sources).
CREATE TABLE rm_store_profiles (
    user_id     uuid        PRIMARY KEY,
    username    text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    description text        NOT NULL,
    links       jsonb       NOT NULL,
    avatar_url  text        NOT NULL,
    is_featured boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE rm_store_listings (
    listing_id        uuid        PRIMARY KEY,
    owner_id          uuid        NOT NULL,
    graph_id          uuid        NOT NULL,
    slug              text        NOT NULL,
    active_version_id uuid,
    is_deleted        boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX rm_store_listings_owner_idx ON rm_store_listings (owner_id);
CREATE INDEX rm_store_listings_graph_idx ON rm_store_listings (graph_id);

CREATE TABLE rm_store_versions (
    version_id                uuid        PRIMARY KEY,
    listing_id                uuid        NOT NULL,
    version                   integer     NOT NULL,
    agent_version             integer     NOT NULL,
    details                   jsonb       NOT NULL,
    status                    text        NOT NULL,
    submitted_at              timestamptz NOT NULL,
    reviewer_id               uuid,
    review_comments           text,
    internal_comments         text,
    reviewed_at               timestamptz,
    is_deleted                boolean     NOT NULL DEFAULT false
);
CREATE INDEX rm_store_versions_listing_idx ON rm_store_versions (listing_id, version);

CREATE TABLE rm_store_reviews (
    version_id uuid    NOT NULL,
    user_id    uuid    NOT NULL,
    listing_id uuid    NOT NULL,
    score      integer NOT NULL,
    comments   text,
    PRIMARY KEY (version_id, user_id)
);
CREATE INDEX rm_store_reviews_listing_idx ON rm_store_reviews (listing_id);

-- Runs per graph, counted from queued executions.
CREATE TABLE rm_graph_runs (
    graph_id uuid   PRIMARY KEY,
    runs     bigint NOT NULL
);

-- One row per listing the store shows (an approved version is active),
-- with everything the listing page filters, sorts and searches on.
CREATE TABLE rm_store_agents (
    listing_id     uuid        PRIMARY KEY,
    version_id     uuid        NOT NULL,
    graph_id       uuid        NOT NULL,
    owner_id       uuid        NOT NULL,
    slug           text        NOT NULL,
    agent_name     text        NOT NULL,
    agent_image    text        NOT NULL,
    creator        text        NOT NULL,
    creator_avatar text        NOT NULL,
    sub_heading    text        NOT NULL,
    description    text        NOT NULL,
    categories     text[]      NOT NULL,
    runs           bigint      NOT NULL,
    rating         double precision NOT NULL,
    is_featured    boolean     NOT NULL,
    updated_at     timestamptz NOT NULL,
    search         tsvector    NOT NULL
);
CREATE INDEX rm_store_agents_search_idx ON rm_store_agents USING gin (search);
CREATE INDEX rm_store_agents_categories_idx ON rm_store_agents USING gin (categories);
CREATE INDEX rm_store_agents_creator_idx ON rm_store_agents (creator);
CREATE INDEX rm_store_agents_runs_idx ON rm_store_agents (runs DESC, listing_id);
CREATE INDEX rm_store_agents_rating_idx ON rm_store_agents (rating DESC, listing_id);
CREATE INDEX rm_store_agents_name_idx ON rm_store_agents (agent_name, listing_id);
CREATE INDEX rm_store_agents_updated_idx ON rm_store_agents (updated_at DESC, listing_id);
CREATE INDEX rm_store_agents_graph_idx ON rm_store_agents (graph_id);
