ALTER TABLE "identities" ADD COLUMN "proven" boolean DEFAULT false NOT NULL;--> statement-breakpoint
-- Identities from before this column: proven when their provider vouched for the address.
-- One that created an account from an unverified address (or was connected with one) is
-- not, and goes at the account's next password reset or confirmation.
UPDATE "identities" SET "proven" = "email_verified";
