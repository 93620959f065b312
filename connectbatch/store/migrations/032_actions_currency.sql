-- The currency of each action's amount, from its row's CurrencyCode (USD when the row left it
-- empty), for data types whose rows carry one (conversions). A brand's JPY order of 12000.00
-- was listed as a bare 12000.00, read as dollars. NULL for data types whose amounts carry no
-- currency column (call conversions: the program's own) and on actions from before.
ALTER TABLE actions ADD COLUMN currency VARCHAR;
