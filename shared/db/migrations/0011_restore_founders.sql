-- Founders back in their personal workspace (#17).
--
-- Before remove_member refused it (shared/workspaces.py), a co-owner could remove the founder of a
-- personal workspace (users.personal_tenant_id) from it. The founder then got 403 there, and
-- folio_sign_in never makes a second personal workspace (personal_tenant_id is already set), so they
-- had none. A founder removed that way could also have been invited back at a lower role.
--
-- This puts every founder back as owner of their personal workspace with personal = true: the row
-- is re-inserted where it is gone, and restored where it lost `owner` or its personal mark. Intact
-- founder rows and every other membership are left as they are; running it again changes nothing.
-- Each repair is in that workspace's audit log (actor "system", action member.restore). API keys
-- revoked when the founder was removed stay revoked.
--
-- memberships and audit_log have FORCE ROW LEVEL SECURITY, so their policies apply to the schema
-- owner that runs this too (unless it is a superuser); folio_current_tenant() gives the owner its
-- app.tenant_id setting as it is, unsigned (0009), so the tenant is set to each workspace in turn,
-- for this transaction only, and cleared at the end.

DO $$
DECLARE
  f record;
  v_role text;
  v_personal boolean;
BEGIN
  FOR f IN SELECT u.user_id, u.personal_tenant_id AS tenant_id FROM users u
           WHERE u.personal_tenant_id IS NOT NULL ORDER BY u.user_id LOOP
    PERFORM set_config('app.tenant_id', f.tenant_id::text, true);
    SELECT m.role, m.personal INTO v_role, v_personal FROM memberships m
      WHERE m.tenant_id = f.tenant_id AND m.user_id = f.user_id FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO memberships (tenant_id, user_id, role, personal) VALUES (f.tenant_id, f.user_id, 'owner', true);
    ELSIF v_role <> 'owner' OR NOT v_personal THEN
      UPDATE memberships SET role = 'owner', personal = true WHERE tenant_id = f.tenant_id AND user_id = f.user_id;
    ELSE
      CONTINUE;
    END IF;
    INSERT INTO audit_log (tenant_id, actor_type, actor_id, action, target_type, target_id, details)
      VALUES (f.tenant_id, 'system', 'migration 0011_restore_founders', 'member.restore', 'user', f.user_id::text,
              jsonb_build_object('previousRole', v_role, 'role', 'owner'));
  END LOOP;
  PERFORM set_config('app.tenant_id', '', true);
END $$;
