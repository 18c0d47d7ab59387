-- Wrong guesses per code, counted atomically before each comparison, so parallel guessing cannot exceed the limit.
ALTER TABLE selfservice_codes ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
