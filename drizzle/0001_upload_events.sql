-- Every status change of an upload is announced on the channel `upload_events`, from the same
-- transaction (NOTIFY is delivered on commit), so live progress streams (SSE) see every change
-- whichever process made it, and no code path can forget to announce one.
CREATE OR REPLACE FUNCTION notify_upload_status() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM pg_notify('upload_events', json_build_object(
      'type', 'status',
      'id', NEW.id,
      'ownerId', NEW.owner_id,
      'status', NEW.status
    )::text);
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER uploads_notify_status
  AFTER INSERT OR UPDATE OF status ON uploads
  FOR EACH ROW EXECUTE FUNCTION notify_upload_status();
