-- Membership by email only through verified email addresses.
--
-- Invitations and "add member by email" used to match any account that claimed the address, from
-- any identity provider; someone signing in first with the invitee's address (e.g. through a
-- provider that does not verify email) could take the seat. Now the identity layer says whether
-- the provider vouches for the address (shared/identity: Entra tokens with a UPN or a verified
-- email claim, the Static Web Apps Entra provider), only such addresses accept invitations, and an
-- address shared by several verified accounts is ambiguous, so the owner is asked to resolve it.

ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

DROP FUNCTION folio_sign_in(text, text, text, text);
DROP FUNCTION folio_find_user_by_email(text);

CREATE FUNCTION folio_sign_in(p_idp text, p_subject text, p_email text, p_name text, p_email_verified boolean)
  RETURNS uuid
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_user uuid;
  v_personal uuid;
  v_email text := lower(nullif(btrim(p_email), ''));
  v_inv record;
BEGIN
  INSERT INTO users AS u (user_id, idp, idp_subject, email, display_name, email_verified)
  VALUES (gen_random_uuid(), p_idp, p_subject, v_email, nullif(btrim(p_name), ''), v_email IS NOT NULL AND p_email_verified)
  ON CONFLICT (idp, idp_subject) DO UPDATE
    SET email = coalesce(EXCLUDED.email, u.email),
        email_verified = CASE WHEN EXCLUDED.email IS NULL THEN u.email_verified ELSE EXCLUDED.email_verified END,
        display_name = coalesce(EXCLUDED.display_name, u.display_name),
        last_seen_at = now()
  RETURNING user_id, personal_tenant_id INTO v_user, v_personal;

  IF v_personal IS NULL THEN
    v_personal := gen_random_uuid();
    PERFORM set_config('app.tenant_id', v_personal::text, true);
    INSERT INTO tenants (tenant_id, name)
      VALUES (v_personal, left(coalesce(nullif(btrim(p_name), ''), v_email, 'My') || '''s workspace', 200));
    INSERT INTO memberships (tenant_id, user_id, role, personal) VALUES (v_personal, v_user, 'owner', true);
    UPDATE users SET personal_tenant_id = v_personal WHERE user_id = v_user;
  END IF;

  IF v_email IS NOT NULL AND p_email_verified THEN
    -- Invitations are read by email here, before any workspace is chosen (policy invitation_own).
    PERFORM set_config('app.user_email', v_email, true);
    FOR v_inv IN SELECT i.tenant_id, i.role FROM invitations i WHERE i.email = v_email LOOP
      PERFORM set_config('app.tenant_id', v_inv.tenant_id::text, true);
      INSERT INTO memberships (tenant_id, user_id, role) VALUES (v_inv.tenant_id, v_user, v_inv.role)
        ON CONFLICT (tenant_id, user_id) DO NOTHING;
      DELETE FROM invitations WHERE tenant_id = v_inv.tenant_id AND email = v_email;
    END LOOP;
    PERFORM set_config('app.user_email', '', true);
  END IF;

  PERFORM set_config('app.tenant_id', '', true);
  RETURN v_user;
END $$;

-- Accounts with this verified email: none (invite them), one (add it), or several (ambiguous).
CREATE FUNCTION folio_find_users_by_email(p_email text) RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT user_id FROM users WHERE lower(email) = lower(p_email) AND email_verified
        ORDER BY created_at LIMIT 2 $$;
