-- Membership by consent (#17 item 4).
--
-- Before: adding someone by email made a membership at once when a verified account had that
-- address (at any role, without asking them), and the answer said whether it had (201 "added" vs
-- 202 "invited"): a way to learn which addresses have accounts. Pending invitations turned into
-- memberships by themselves at the invitee's next sign-in.
--
-- Now every "add by email" is an invitation, whatever exists behind the address, and only the
-- invitee answers it: they see the invitations addressed to their verified email in the app and
-- accept (a membership at the invited role) or decline (the invitation is gone). Sign-in no longer
-- touches invitations. Invitations expire after 30 days.
--
-- The invitee reaches invitations of other workspaces only through the two SECURITY DEFINER
-- functions below, which take the user from the transaction's context (app.user_id, checked by
-- folio_context_verified() where a later migration installs it) and the address from `users`
-- (verified only), never from an argument. The owner-only policies let those functions read the
-- rows; the app role's own policies are unchanged. folio_find_users_by_email (the lookup behind
-- "added") is dropped: nothing needs to know whether an address has an account any more.

ALTER TABLE invitations ADD COLUMN invitation_id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE invitations ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now() + interval '30 days';
CREATE UNIQUE INDEX invitations_id ON invitations (tenant_id, invitation_id);

-- The old invitee policy trusted app.user_email, a setting any session may set to any address.
DROP POLICY invitation_own ON invitations;

DROP FUNCTION folio_find_users_by_email(text);

-- Sign-in: as 0005, without turning invitations into memberships.
CREATE OR REPLACE FUNCTION folio_sign_in(
  p_idp text, p_subject text, p_email text, p_name text, p_email_verified boolean
) RETURNS uuid
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_user uuid;
  v_personal uuid;
  v_email text := lower(nullif(btrim(p_email), ''));
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
    PERFORM set_config('app.tenant_id', '', true);
  END IF;
  RETURN v_user;
END $$;

-- The verified address of the context's user, or NULL (no user, unverified address, or a context
-- that a signing key is installed for and that is not signed).
CREATE FUNCTION folio_invitee_email() RETURNS text
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_signed boolean := true;
  v_user uuid := NULLIF(current_setting('app.user_id', true), '')::uuid;
BEGIN
  IF to_regprocedure('folio_context_verified()') IS NOT NULL THEN
    EXECUTE 'SELECT folio_context_verified()' INTO v_signed;
  END IF;
  IF NOT coalesce(v_signed, false) OR v_user IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT lower(email) FROM users WHERE user_id = v_user AND email_verified);
END $$;
REVOKE EXECUTE ON FUNCTION folio_invitee_email() FROM PUBLIC;

-- Only these functions (running as the owner) read invitations and their workspaces by address.
DO $$ BEGIN
  EXECUTE format('CREATE POLICY invitation_invitee ON invitations FOR SELECT TO %I'
                 ' USING (email = NULLIF(current_setting(''folio.invitee_email'', true), ''''))', current_user);
  EXECUTE format('CREATE POLICY tenant_invitee ON tenants FOR SELECT TO %I USING (EXISTS ('
                 'SELECT 1 FROM invitations i WHERE i.tenant_id = tenants.tenant_id'
                 ' AND i.email = NULLIF(current_setting(''folio.invitee_email'', true), '''')))', current_user);
END $$;

-- The caller's pending invitations, newest first.
CREATE FUNCTION folio_my_invitations()
  RETURNS TABLE (invitation_id uuid, tenant_id uuid, workspace text, role text, invited_at timestamptz,
                 expires_at timestamptz)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_email text := folio_invitee_email();
BEGIN
  IF v_email IS NULL THEN
    RETURN;
  END IF;
  PERFORM set_config('folio.invitee_email', v_email, true);
  RETURN QUERY
    SELECT i.invitation_id, i.tenant_id, t.name, i.role, i.created_at, i.expires_at
    FROM invitations i JOIN tenants t ON t.tenant_id = i.tenant_id
    WHERE i.email = v_email AND i.expires_at > now()
    ORDER BY i.created_at DESC, i.invitation_id;
  PERFORM set_config('folio.invitee_email', '', true);
END $$;

-- Accept (a membership at the invited role) or decline one of the caller's invitations. Returns
-- the workspace and role, or no row when there is no such pending invitation for this caller.
CREATE FUNCTION folio_answer_invitation(p_invitation uuid, p_accept boolean)
  RETURNS TABLE (tenant_id uuid, role text, joined boolean)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_email text := folio_invitee_email();
  v_user uuid := NULLIF(current_setting('app.user_id', true), '')::uuid;
  v_tenant_setting text := current_setting('app.tenant_id', true);
  v_inv record;
  v_joined boolean := false;
BEGIN
  IF v_email IS NULL THEN
    RETURN;
  END IF;
  PERFORM set_config('folio.invitee_email', v_email, true);
  SELECT i.tenant_id, i.role INTO v_inv FROM invitations i
    WHERE i.invitation_id = p_invitation AND i.email = v_email AND i.expires_at > now();
  PERFORM set_config('folio.invitee_email', '', true);
  IF v_inv.tenant_id IS NULL THEN  -- no such pending invitation for this caller
    RETURN;
  END IF;
  PERFORM set_config('app.tenant_id', v_inv.tenant_id::text, true);
  DELETE FROM invitations i WHERE i.tenant_id = v_inv.tenant_id AND i.invitation_id = p_invitation;
  IF p_accept THEN
    INSERT INTO memberships AS m (tenant_id, user_id, role) VALUES (v_inv.tenant_id, v_user, v_inv.role)
      ON CONFLICT ON CONSTRAINT memberships_pkey DO NOTHING
      RETURNING true INTO v_joined;
  END IF;
  -- Back to the caller's own context (a signed one must still match its signature).
  PERFORM set_config('app.tenant_id', coalesce(v_tenant_setting, ''), true);
  RETURN QUERY SELECT v_inv.tenant_id, v_inv.role, coalesce(v_joined, false);
END $$;
