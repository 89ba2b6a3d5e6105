-- What `create_all` of recrm at f1ec1cd created on postgresql (core, membership and survey
-- tables), plus the customer_projects.customer_id index of databases made before ebb4d53.
-- Frozen: generated once from `git show f1ec1cd:...tables.py`; never regenerate.
CREATE TABLE customers (
	id SERIAL NOT NULL, 
	name VARCHAR(100), 
	gender VARCHAR(6), 
	birth_date DATE, 
	persona VARCHAR(16), 
	budget BIGINT, 
	email VARCHAR(254), 
	source_system VARCHAR(64), 
	external_id VARCHAR(128), 
	stage VARCHAR(12) NOT NULL, 
	merged_into INTEGER, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_customers PRIMARY KEY (id), 
	CONSTRAINT uq_customers_source_system_external_id UNIQUE (source_system, external_id), 
	CONSTRAINT fk_customers_merged_into_customers FOREIGN KEY(merged_into) REFERENCES customers (id)
);

CREATE INDEX ix_customers_email ON customers (email);

CREATE INDEX ix_customers_merged_into ON customers (merged_into);

CREATE INDEX ix_customers_stage ON customers (stage);

CREATE TABLE projects (
	id SERIAL NOT NULL, 
	code VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_projects PRIMARY KEY (id), 
	CONSTRAINT uq_projects_code UNIQUE (code)
);

CREATE TABLE survey_definitions (
	key VARCHAR(64) NOT NULL, 
	definition JSON NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_survey_definitions PRIMARY KEY (key)
);

CREATE TABLE cases (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	project_id INTEGER, 
	category VARCHAR(32) NOT NULL, 
	priority VARCHAR(8) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	subject VARCHAR(200) NOT NULL, 
	description TEXT, 
	department VARCHAR(64), 
	assignee VARCHAR(64), 
	escalation_level INTEGER NOT NULL, 
	sla_due_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	opened_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	resolved_at TIMESTAMP WITH TIME ZONE, 
	closed_at TIMESTAMP WITH TIME ZONE, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_cases PRIMARY KEY (id), 
	CONSTRAINT fk_cases_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id), 
	CONSTRAINT fk_cases_project_id_projects FOREIGN KEY(project_id) REFERENCES projects (id)
);

CREATE INDEX ix_cases_customer_id ON cases (customer_id);

CREATE INDEX ix_cases_project_id ON cases (project_id);

CREATE INDEX ix_cases_status_sla_due_at ON cases (status, sla_due_at);

CREATE TABLE consents (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	channel VARCHAR(16) NOT NULL, 
	purpose VARCHAR(32) NOT NULL, 
	granted BOOLEAN NOT NULL, 
	source VARCHAR(64), 
	actor_staff VARCHAR(64), 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_consents PRIMARY KEY (id), 
	CONSTRAINT fk_consents_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id)
);

CREATE INDEX ix_consents_customer_channel_purpose ON consents (customer_id, channel, purpose);

CREATE TABLE customer_projects (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	project_id INTEGER NOT NULL, 
	stage VARCHAR(12) NOT NULL, 
	owner_staff VARCHAR(64), 
	source VARCHAR(64), 
	first_seen_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	stage_changed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_customer_projects PRIMARY KEY (id), 
	CONSTRAINT uq_customer_projects_customer_id_project_id UNIQUE (customer_id, project_id), 
	CONSTRAINT fk_customer_projects_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id), 
	CONSTRAINT fk_customer_projects_project_id_projects FOREIGN KEY(project_id) REFERENCES projects (id)
);

CREATE INDEX ix_customer_projects_owner_staff_project ON customer_projects (owner_staff, project_id);

CREATE INDEX ix_customer_projects_project_id ON customer_projects (project_id);

CREATE TABLE identities (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	value VARCHAR(128) NOT NULL, 
	display VARCHAR(128) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_identities PRIMARY KEY (id), 
	CONSTRAINT uq_identities_kind_value UNIQUE (kind, value), 
	CONSTRAINT fk_identities_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id)
);

CREATE INDEX ix_identities_customer_id ON identities (customer_id);

CREATE TABLE interactions (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	channel VARCHAR(32), 
	project_id INTEGER, 
	staff VARCHAR(64), 
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	summary TEXT, 
	data JSON NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_interactions PRIMARY KEY (id), 
	CONSTRAINT fk_interactions_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id), 
	CONSTRAINT fk_interactions_project_id_projects FOREIGN KEY(project_id) REFERENCES projects (id)
);

CREATE INDEX ix_interactions_customer_occurred ON interactions (customer_id, occurred_at);

CREATE INDEX ix_interactions_kind ON interactions (kind);

CREATE INDEX ix_interactions_project_id ON interactions (project_id);

CREATE TABLE membership_events (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	number VARCHAR(32) NOT NULL, 
	action VARCHAR(16) NOT NULL, 
	note VARCHAR(200), 
	actor_staff VARCHAR(64), 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_membership_events PRIMARY KEY (id), 
	CONSTRAINT fk_membership_events_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id)
);

CREATE INDEX ix_membership_events_customer_id ON membership_events (customer_id);

CREATE TABLE membership_ledger (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	points INTEGER NOT NULL, 
	event_kind VARCHAR(32), 
	event_subject INTEGER, 
	event_ref VARCHAR(128), 
	project VARCHAR(64), 
	interaction_id INTEGER, 
	source_entry_id INTEGER, 
	duplicate_of INTEGER, 
	reason VARCHAR(200), 
	actor_staff VARCHAR(64), 
	actor_role VARCHAR(32), 
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_membership_ledger PRIMARY KEY (id), 
	CONSTRAINT uq_membership_ledger_event_kind_event_subject_event_ref UNIQUE (event_kind, event_subject, event_ref), 
	CONSTRAINT fk_membership_ledger_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id), 
	CONSTRAINT fk_membership_ledger_source_entry_id_membership_ledger FOREIGN KEY(source_entry_id) REFERENCES membership_ledger (id), 
	CONSTRAINT fk_membership_ledger_duplicate_of_membership_ledger FOREIGN KEY(duplicate_of) REFERENCES membership_ledger (id)
);

CREATE INDEX ix_membership_ledger_customer_id ON membership_ledger (customer_id);

CREATE INDEX ix_membership_ledger_expires_at ON membership_ledger (expires_at);

CREATE TABLE membership_members (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	number VARCHAR(32), 
	status VARCHAR(8) NOT NULL, 
	tier VARCHAR(32) NOT NULL, 
	contracts INTEGER NOT NULL, 
	enrolled_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	left_at TIMESTAMP WITH TIME ZONE, 
	merged_into INTEGER, 
	CONSTRAINT pk_membership_members PRIMARY KEY (id), 
	CONSTRAINT uq_membership_members_customer_id UNIQUE (customer_id), 
	CONSTRAINT fk_membership_members_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id), 
	CONSTRAINT uq_membership_members_number UNIQUE (number), 
	CONSTRAINT fk_membership_members_merged_into_customers FOREIGN KEY(merged_into) REFERENCES customers (id)
);

CREATE INDEX ix_membership_members_status ON membership_members (status);

CREATE TABLE membership_tier_changes (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	old_tier VARCHAR(32), 
	new_tier VARCHAR(32) NOT NULL, 
	reason VARCHAR(32) NOT NULL, 
	lifetime_points INTEGER NOT NULL, 
	contracts INTEGER NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_membership_tier_changes PRIMARY KEY (id), 
	CONSTRAINT fk_membership_tier_changes_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id)
);

CREATE INDEX ix_membership_tier_changes_customer_id ON membership_tier_changes (customer_id);

CREATE TABLE case_history (
	id SERIAL NOT NULL, 
	case_id INTEGER NOT NULL, 
	action VARCHAR(16) NOT NULL, 
	from_value VARCHAR(128), 
	to_value VARCHAR(128), 
	note TEXT, 
	actor_staff VARCHAR(64), 
	actor_role VARCHAR(32), 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_case_history PRIMARY KEY (id), 
	CONSTRAINT fk_case_history_case_id_cases FOREIGN KEY(case_id) REFERENCES cases (id)
);

CREATE INDEX ix_case_history_case_id ON case_history (case_id);

CREATE TABLE membership_referrals (
	id SERIAL NOT NULL, 
	referrer_id INTEGER NOT NULL, 
	referred_id INTEGER NOT NULL, 
	project VARCHAR(64) NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	converted_at TIMESTAMP WITH TIME ZONE, 
	reward_entry_id INTEGER, 
	actor_staff VARCHAR(64), 
	note VARCHAR(200), 
	CONSTRAINT pk_membership_referrals PRIMARY KEY (id), 
	CONSTRAINT fk_membership_referrals_referrer_id_customers FOREIGN KEY(referrer_id) REFERENCES customers (id), 
	CONSTRAINT fk_membership_referrals_referred_id_customers FOREIGN KEY(referred_id) REFERENCES customers (id), 
	CONSTRAINT fk_membership_referrals_reward_entry_id_membership_ledger FOREIGN KEY(reward_entry_id) REFERENCES membership_ledger (id)
);

CREATE INDEX ix_membership_referrals_referrer_id ON membership_referrals (referrer_id);

CREATE UNIQUE INDEX uq_membership_referrals_live ON membership_referrals (referred_id, project) WHERE status <> 'superseded';

CREATE TABLE survey_invitations (
	id SERIAL NOT NULL, 
	customer_id INTEGER NOT NULL, 
	survey_key VARCHAR(64) NOT NULL, 
	trigger VARCHAR(16) NOT NULL, 
	dedupe_key VARCHAR(200) NOT NULL, 
	token VARCHAR(48) NOT NULL, 
	project VARCHAR(64), 
	unit VARCHAR(64), 
	case_id INTEGER, 
	months_after INTEGER, 
	year INTEGER, 
	channel VARCHAR(16) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	due_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	claimed_at TIMESTAMP WITH TIME ZONE, 
	sent_at TIMESTAMP WITH TIME ZONE, 
	transport VARCHAR(64), 
	detail VARCHAR(300), 
	CONSTRAINT pk_survey_invitations PRIMARY KEY (id), 
	CONSTRAINT fk_survey_invitations_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id), 
	CONSTRAINT uq_survey_invitations_dedupe_key UNIQUE (dedupe_key), 
	CONSTRAINT uq_survey_invitations_token UNIQUE (token), 
	CONSTRAINT fk_survey_invitations_case_id_cases FOREIGN KEY(case_id) REFERENCES cases (id)
);

CREATE INDEX ix_survey_invitations_customer_id ON survey_invitations (customer_id);

CREATE INDEX ix_survey_invitations_project ON survey_invitations (project);

CREATE INDEX ix_survey_invitations_status_due ON survey_invitations (status, due_at);

CREATE INDEX ix_survey_invitations_survey_key ON survey_invitations (survey_key);

CREATE TABLE survey_answers (
	id SERIAL NOT NULL, 
	invitation_id INTEGER NOT NULL, 
	customer_id INTEGER NOT NULL, 
	survey_key VARCHAR(64) NOT NULL, 
	project VARCHAR(64), 
	answered_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	period_month VARCHAR(7) NOT NULL, 
	answers JSON NOT NULL, 
	case_id INTEGER, 
	CONSTRAINT pk_survey_answers PRIMARY KEY (id), 
	CONSTRAINT uq_survey_answers_invitation_id UNIQUE (invitation_id), 
	CONSTRAINT fk_survey_answers_invitation_id_survey_invitations FOREIGN KEY(invitation_id) REFERENCES survey_invitations (id), 
	CONSTRAINT fk_survey_answers_customer_id_customers FOREIGN KEY(customer_id) REFERENCES customers (id), 
	CONSTRAINT fk_survey_answers_case_id_cases FOREIGN KEY(case_id) REFERENCES cases (id)
);

CREATE INDEX ix_survey_answers_answered_at ON survey_answers (answered_at);

CREATE INDEX ix_survey_answers_customer_id ON survey_answers (customer_id);

CREATE TABLE survey_scores (
	answer_id INTEGER NOT NULL, 
	question_id VARCHAR(32) NOT NULL, 
	role VARCHAR(32), 
	value INTEGER NOT NULL, 
	scale_max INTEGER NOT NULL, 
	CONSTRAINT pk_survey_scores PRIMARY KEY (answer_id, question_id), 
	CONSTRAINT fk_survey_scores_answer_id_survey_answers FOREIGN KEY(answer_id) REFERENCES survey_answers (id)
);

CREATE INDEX ix_survey_scores_role_answer ON survey_scores (role, answer_id);

CREATE INDEX ix_customer_projects_customer_id ON customer_projects (customer_id);
