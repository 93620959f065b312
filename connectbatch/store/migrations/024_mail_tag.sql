-- The tag of an e-mail push connection's address (inbox+<tag>@...), kept from its creation:
-- the address was made from the name every time, so renaming the connection moved it, and
-- mail the partner kept sending to the address they were given was no longer taken. NULL on
-- rows from before: their tag is still their name's until a rename keeps it here.
ALTER TABLE connections ADD COLUMN mail_tag VARCHAR;
