-- Restoration (复耕验收) is verified by the Natural Resources Bureau together with the
-- Agriculture and Rural Affairs Bureau: one row per body that signed; the case becomes
-- restored, and restoration_verified is emitted, only once both bodies have signed.
CREATE TABLE restoration_sign_offs (
    case_id      text        NOT NULL REFERENCES cases (case_id),
    body         text        NOT NULL CHECK (body IN ('natural_resources', 'agriculture')),
    officer      text        NOT NULL,
    verified_on  date        NOT NULL,
    signed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, body)
);
