CREATE TABLE "oauth_client_assertions" (
	"client_id" text NOT NULL,
	"jti" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "oauth_client_assertions_client_id_jti_pk" PRIMARY KEY("client_id","jti")
);
--> statement-breakpoint
CREATE TABLE "oauth_client_secrets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"client_id" text NOT NULL,
	"secret_hash" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "oauth_clients" (
	"client_id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"type" text NOT NULL,
	"token_endpoint_auth_method" text NOT NULL,
	"redirect_uris" text[] DEFAULT '{}'::text[] NOT NULL,
	"post_logout_redirect_uris" text[] DEFAULT '{}'::text[] NOT NULL,
	"grant_types" text[] DEFAULT '{}'::text[] NOT NULL,
	"scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"first_party" boolean DEFAULT false NOT NULL,
	"access_token_seconds" integer,
	"refresh_token_days" integer,
	"jwks" jsonb,
	"jwks_uri" text,
	"backchannel_logout_uri" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "client_id" text;--> statement-breakpoint
ALTER TABLE "mfa_challenges" ADD COLUMN "client" jsonb;--> statement-breakpoint
ALTER TABLE "oauth_client_assertions" ADD CONSTRAINT "oauth_client_assertions_client_id_oauth_clients_client_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."oauth_clients"("client_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "oauth_client_secrets" ADD CONSTRAINT "oauth_client_secrets_client_id_oauth_clients_client_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."oauth_clients"("client_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "oauth_client_assertions_expiry_idx" ON "oauth_client_assertions" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "oauth_client_secrets_client_idx" ON "oauth_client_secrets" USING btree ("client_id");--> statement-breakpoint
CREATE UNIQUE INDEX "oauth_client_secrets_one_current" ON "oauth_client_secrets" USING btree ("client_id") WHERE "oauth_client_secrets"."expires_at" is null;