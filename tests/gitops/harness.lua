-- Runs an Argo CD resource health script as Argo CD does: the live object is the global `obj`
-- and the script's chunk returns {status = ..., message = ...}.
--   lua5.4 harness.lua HEALTH_SCRIPT OBJECT_FILE
-- OBJECT_FILE is a Lua chunk returning the object as a table (absent fields are nil, as in
-- Argo CD). Prints the status on the first line and the message on the second.
local script, object = arg[1], arg[2]
obj = dofile(object)
local hs = dofile(script)
assert(type(hs) == "table", "the health script must return a table")
io.write(tostring(hs.status), "\n", tostring(hs.message or ""), "\n")
