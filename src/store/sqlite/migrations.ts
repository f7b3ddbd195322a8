/** Schema migrations, applied in order; index + 1 is the `user_version` after each. Never edit a shipped entry: append. */
export const migrations: readonly string[] = [
  // 1: guard state, audit, tokens, embedded backends
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  CREATE TABLE killswitch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    engaged INTEGER NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    changed_at INTEGER NOT NULL
  );
  INSERT INTO killswitch VALUES (1, 0, 'initial state', 'system', 0);

  CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    event TEXT NOT NULL,
    trace_id TEXT,
    actor TEXT NOT NULL,
    session_id TEXT,
    tool TEXT,
    args TEXT,
    args_sha256 TEXT,
    outcome TEXT,
    code TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE INDEX audit_trace ON audit(trace_id);
  CREATE INDEX audit_event ON audit(event, ts);
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER
  );

  CREATE TABLE kb_articles (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    tags TEXT NOT NULL,
    body TEXT NOT NULL,
    updated TEXT NOT NULL
  );
  CREATE VIRTUAL TABLE kb_fts USING fts5(
    title, tags, body, content='kb_articles', content_rowid='rowid', tokenize='porter unicode61'
  );
  CREATE TRIGGER kb_ai AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_fts(rowid, title, tags, body) VALUES (new.rowid, new.title, new.tags, new.body);
  END;
  CREATE TRIGGER kb_ad AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_fts(kb_fts, rowid, title, tags, body) VALUES ('delete', old.rowid, old.title, old.tags, old.body);
  END;
  CREATE TRIGGER kb_au AFTER UPDATE ON kb_articles BEGIN
    INSERT INTO kb_fts(kb_fts, rowid, title, tags, body) VALUES ('delete', old.rowid, old.title, old.tags, old.body);
    INSERT INTO kb_fts(rowid, title, tags, body) VALUES (new.rowid, new.title, new.tags, new.body);
  END;

  CREATE TABLE dir_users (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    email TEXT NOT NULL,
    department TEXT NOT NULL,
    title TEXT NOT NULL,
    manager TEXT,
    groups TEXT NOT NULL,
    recovery_kind TEXT NOT NULL,
    recovery_address TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    password_changed_at INTEGER
  );

  CREATE TABLE tickets (
    key TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    number INTEGER NOT NULL,
    summary TEXT NOT NULL,
    description TEXT NOT NULL,
    requester TEXT NOT NULL,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    request_id TEXT UNIQUE,
    UNIQUE (project, number)
  );
  CREATE TABLE ticket_comments (
    id INTEGER PRIMARY KEY,
    ticket_key TEXT NOT NULL REFERENCES tickets(key),
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    request_id TEXT UNIQUE
  );
  CREATE INDEX ticket_comments_key ON ticket_comments(ticket_key);
  `,
  // 2: idempotency records and aggregate cap usage
  `
  CREATE TABLE idempotency (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    explicit INTEGER NOT NULL,
    tool TEXT NOT NULL,
    args_sha256 TEXT NOT NULL,
    request_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'completed', 'failed')),
    result TEXT,
    trace_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (principal, key)
  );
  CREATE INDEX idempotency_expires ON idempotency(expires_at);

  CREATE TABLE cap_usage (
    tool TEXT NOT NULL,
    rule TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    used REAL NOT NULL,
    alarmed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tool, rule, scope_key, window_start)
  );
  `,
  // 3: human gates (approvals, MFA factors), outbox, password resets, software catalog, devices, install jobs
  `
  CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    principal TEXT NOT NULL,
    session_id TEXT,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    args_sha256 TEXT NOT NULL,
    summary TEXT NOT NULL,
    reason TEXT NOT NULL,
    target TEXT,
    caps TEXT NOT NULL DEFAULT '[]',
    cap_items TEXT NOT NULL DEFAULT '[]',
    idem_key TEXT,
    request_id TEXT,
    verify_hash TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'executing', 'succeeded', 'failed')),
    trace_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    note TEXT,
    result TEXT,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX approvals_status ON approvals(status, created_at);
  CREATE INDEX approvals_binding ON approvals(principal, tool, args_sha256);

  CREATE TABLE mfa_factors (
    username TEXT PRIMARY KEY REFERENCES dir_users(username),
    secret TEXT NOT NULL,
    last_counter INTEGER NOT NULL DEFAULT -1,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    enrolled_at INTEGER NOT NULL
  );

  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    request_id TEXT UNIQUE
  );

  CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    request_id TEXT UNIQUE,
    outbox_id INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  );

  CREATE TABLE catalog (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    publisher TEXT NOT NULL,
    versions TEXT NOT NULL,
    platforms TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    self_service INTEGER NOT NULL,
    license_pool INTEGER,
    description TEXT NOT NULL
  );
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    hostname TEXT NOT NULL,
    platform TEXT NOT NULL,
    model TEXT NOT NULL
  );
  CREATE TABLE install_jobs (
    id TEXT PRIMARY KEY,
    request_id TEXT UNIQUE,
    username TEXT NOT NULL,
    device_id TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'installing', 'installed', 'failed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    detail TEXT
  );
  CREATE INDEX install_jobs_package ON install_jobs(package, state);
  `,
  // 4: the embedded directory keeps a password hash (scrypt) set through the one-time reset page
  `
  ALTER TABLE dir_users ADD COLUMN password_hash TEXT;
  `,
  // 5: principal budgets and the principal loop breaker; runners of approved requests; idempotency records that share a request id
  `
  CREATE TABLE budget_usage (
    rule TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    used REAL NOT NULL,
    alarmed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, scope_key, window_start)
  );
  CREATE TABLE breaker_identical (
    principal TEXT NOT NULL,
    sig TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (principal, sig, window_start)
  );
  CREATE TABLE breaker (
    principal TEXT PRIMARY KEY,
    streak INTEGER NOT NULL DEFAULT 0,
    tripped_rule TEXT,
    tripped_why TEXT,
    tripped_at INTEGER,
    clears_at INTEGER
  );
  ALTER TABLE approvals ADD COLUMN runner TEXT;
  ALTER TABLE approvals ADD COLUMN lease_until INTEGER;
  CREATE INDEX idempotency_request ON idempotency(principal, request_id);
  `,
  // 6: backends behind ports. TOTP factors are keyed by username whatever directory the user lives in (no foreign
  // key to the embedded directory); a reset link is issued per attempt (a retry after a failed delivery issues a
  // new one), so request ids are no longer unique there; deliveries record which outbox carried them.
  `
  CREATE TABLE mfa_factors_v6 (
    username TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    last_counter INTEGER NOT NULL DEFAULT -1,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    enrolled_at INTEGER NOT NULL
  );
  INSERT INTO mfa_factors_v6 SELECT username, secret, last_counter, failures, locked_until, enrolled_at FROM mfa_factors;
  DROP TABLE mfa_factors;
  ALTER TABLE mfa_factors_v6 RENAME TO mfa_factors;
  CREATE TABLE password_resets_v6 (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    request_id TEXT,
    outbox_id INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  );
  INSERT INTO password_resets_v6 SELECT * FROM password_resets;
  DROP TABLE password_resets;
  ALTER TABLE password_resets_v6 RENAME TO password_resets;
  CREATE INDEX password_resets_user ON password_resets(username, used_at);
  CREATE INDEX password_resets_request ON password_resets(request_id);
  ALTER TABLE outbox ADD COLUMN via TEXT NOT NULL DEFAULT 'embedded';
  ALTER TABLE outbox ADD COLUMN message_id TEXT;
  `,
  // 7: the human an OAuth-authenticated agent acts for (DESIGN §6), on every audit record of the call and on the
  // approval request (so the console, request_status and a later run by the executor know it). A column rather than
  // a key inside detail: it is who-did-it like actor, queryable, and kept apart from each event's own detail. NULL on
  // every older row and wherever no human is known (stdio, static tokens, client credentials); the audit hash covers
  // the column only when it is set, so every record written before it verifies exactly as before.
  `
  ALTER TABLE audit ADD COLUMN on_behalf_of TEXT;
  ALTER TABLE approvals ADD COLUMN on_behalf_of TEXT;
  `,
  // 8: MRTR. The one-time nonce the current requestState of an approval request carries (DESIGN §4): a state is
  // accepted once, when its nonce is taken; a new round gets a new one.
  `
  ALTER TABLE approvals ADD COLUMN state_nonce TEXT;
  `,
  // 9: a cap reservation belongs to its request. The items an in-flight request holds (JSON, as CapsStore.reserve
  // made them) are written on its idempotency records in the reservation's own transaction, so a retry that adopts
  // the records of an attempt killed before its effect gives that reservation back as it reserves again, never
  // charging the request twice. NULL: the request holds none (never reserved, given back, or handed to an approval).
  `
  ALTER TABLE idempotency ADD COLUMN cap_items TEXT;
  `,
  // 10: tasks (DESIGN §3 step 4). Per-task state replaces the per-session counters that lived in one process: the
  // task's calls, first and last call, result bytes, failure streak and trip, with its identical-call counts per
  // task instance (a task id that went idle and came back is a new instance: its old counts are never read again).
  // The principal breaker becomes the fleet breaker: it trips on the number of different tasks tripped in the hour
  // (breaker_tasks), so the principal-wide identical-call counts go. Every audit record and approval request carries
  // its task id; the audit hash covers the column only when set, so older records verify as before.
  `
  CREATE TABLE tasks (
    task_key TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    last_call_at INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    result_bytes INTEGER NOT NULL,
    streak INTEGER NOT NULL,
    tripped_rule TEXT,
    tripped_why TEXT,
    tripped_at INTEGER
  );
  CREATE INDEX tasks_last_call ON tasks(last_call_at);
  CREATE INDEX tasks_id ON tasks(id);
  CREATE TABLE task_identical (
    task_key TEXT NOT NULL,
    task_started INTEGER NOT NULL,
    sig TEXT NOT NULL,
    count INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (task_key, task_started, sig)
  );
  CREATE INDEX task_identical_seen ON task_identical(seen_at);
  CREATE TABLE breaker_tasks (
    principal TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    task_key TEXT NOT NULL,
    PRIMARY KEY (principal, window_start, task_key)
  );
  DROP TABLE breaker_identical;
  UPDATE breaker SET streak = 0;
  ALTER TABLE audit ADD COLUMN task_id TEXT;
  CREATE INDEX audit_task ON audit(task_id, seq);
  ALTER TABLE approvals ADD COLUMN task_id TEXT;
  `,
  // 11 (cloud adapters): install jobs of a remote deployment system (Intune), tracked by itguard (DESIGN §8): the
  // job is recorded as `requested` before the first Graph write (a retry resumes it, never starts another), becomes
  // `pending` once the device (or user) is in the app's assignment group, and ends `installed`, `failed` (with the
  // platform's error) or `timed_out`, as read from the install status report.
  `
  CREATE TABLE deploy_jobs (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    backend TEXT NOT NULL,
    username TEXT NOT NULL,
    device_id TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    app_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('requested', 'pending', 'installed', 'failed', 'timed_out')),
    error TEXT,
    note TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    checked_at INTEGER
  );
  CREATE INDEX deploy_jobs_package ON deploy_jobs(package, state);
  `,
  // 12 (issue 18): separation of duties by stable identity (DESIGN §4). The OAuth user an agent acted for, as
  // issuer + ' sub:' + sub (`on_behalf_of_id`), beside the display `on_behalf_of` of migration 7: every comparison
  // of people uses this column, never the display string. NULL on older rows and where no human is known.
  `
  ALTER TABLE approvals ADD COLUMN on_behalf_of_id TEXT;
  `,
  // 13 (issue 22): approver notifications (DESIGN §4 "Approvers are told"): one row per delivery job (a request's message on one
  // channel to one recipient, a reminder, an outcome update, a test). Enqueued in the transaction that creates the
  // approval request; sent by the notifier worker (src/notify/notifier.ts), retried with backoff. `ref` is what the
  // channel answered (a Slack channel:ts, a Message-ID, an HTTP status); `closed_at` marks a request's jobs once the
  // outcome was handled. The unique key makes enqueueing idempotent.
  `
  CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error TEXT,
    ref TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    updated_at INTEGER NOT NULL,
    closed_at INTEGER,
    UNIQUE (request_id, kind, channel, recipient)
  );
  CREATE INDEX notifications_due ON notifications(status, next_try_at);
  CREATE INDEX notifications_open ON notifications(closed_at, kind);
  `,
  // 14: KB search (issue 21). Articles may carry the questions they answer (front matter `questions:`), indexed as
  // their own column between tags and body so BM25 can weigh them; the FTS5 table is rebuilt for it (an external
  // content table cannot gain a column), with diacritics folded. kb_words indexes the same text unstemmed and
  // without positions (contentless, detail=none: small), so kb_words_vocab says how many articles hold a word as
  // written, for spelling correction, without reading any article. kb_synonyms holds the IT vocabulary file brought by
  // `kb import` (one row; none: the file shipped in kb/ is used).
  `
  ALTER TABLE kb_articles ADD COLUMN questions TEXT NOT NULL DEFAULT '';
  DROP TRIGGER kb_ai;
  DROP TRIGGER kb_ad;
  DROP TRIGGER kb_au;
  DROP TABLE kb_fts;
  CREATE VIRTUAL TABLE kb_fts USING fts5(
    title, tags, questions, body, content='kb_articles', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
  );
  CREATE VIRTUAL TABLE kb_words USING fts5(text, content='', detail=none, tokenize='unicode61 remove_diacritics 2');
  CREATE VIRTUAL TABLE kb_words_vocab USING fts5vocab(kb_words, 'row');
  CREATE TRIGGER kb_ai AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_fts(rowid, title, tags, questions, body) VALUES (new.rowid, new.title, new.tags, new.questions, new.body);
    INSERT INTO kb_words(rowid, text)
      VALUES (new.rowid, new.title || ' ' || new.tags || ' ' || new.questions || ' ' || new.body);
  END;
  CREATE TRIGGER kb_ad AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_fts(kb_fts, rowid, title, tags, questions, body)
      VALUES ('delete', old.rowid, old.title, old.tags, old.questions, old.body);
    INSERT INTO kb_words(kb_words, rowid, text)
      VALUES ('delete', old.rowid, old.title || ' ' || old.tags || ' ' || old.questions || ' ' || old.body);
  END;
  CREATE TRIGGER kb_au AFTER UPDATE ON kb_articles BEGIN
    INSERT INTO kb_fts(kb_fts, rowid, title, tags, questions, body)
      VALUES ('delete', old.rowid, old.title, old.tags, old.questions, old.body);
    INSERT INTO kb_words(kb_words, rowid, text)
      VALUES ('delete', old.rowid, old.title || ' ' || old.tags || ' ' || old.questions || ' ' || old.body);
    INSERT INTO kb_fts(rowid, title, tags, questions, body) VALUES (new.rowid, new.title, new.tags, new.questions, new.body);
    INSERT INTO kb_words(rowid, text)
      VALUES (new.rowid, new.title || ' ' || new.tags || ' ' || new.questions || ' ' || new.body);
  END;
  INSERT INTO kb_fts(kb_fts) VALUES ('rebuild');
  INSERT INTO kb_words(rowid, text) SELECT rowid, title || ' ' || tags || ' ' || questions || ' ' || body FROM kb_articles;
  CREATE TABLE kb_synonyms (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    imported_at INTEGER NOT NULL
  );
  `,
];
