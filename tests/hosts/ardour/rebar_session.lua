-- Rebar in Ardour, headless: the session script that tests/hosts/ardour/run.sh hands to
-- ardour7-lua (Ardour's Lua session tool) with the "None (Dummy)" audio backend.
--
-- It builds what a user would: a MIDI track with a note source ("Rebar Test Notes", a Lua DSP
-- script that plays a fixed melody in time with the transport), Rebar's VST3 as Ardour's own
-- scanner indexed it, and a note counter after Rebar ("Rebar Test Counter"). Then, at the
-- engine block size it is given (48 kHz, 120 BPM, 4/4):
--
--   A. plays bars 1-8 once: every input note comes out unchanged, and nothing else does;
--      Rebar captures the 8 bars (Capture = "Bars from song start").
--   B. presses Regenerate, waits for the model and plays bars 1-8 again: bars 1-4 still pass
--      the input, bars 5-8 play a variation instead (Mode = Replace).
--   C. saves, closes and reloads the session and plays bars 1-8 once more, without a new
--      Regenerate: no event that is not a note comes out at any time, and bars 5-8 play the
--      same variation as in B (the clip and the variations came back with the session).
--
-- Every check prints one "CHECK PASS|FAIL name: detail" line and the script ends with
-- "RESULT PASS" or "RESULT FAIL n"; run.sh reads those. Environment:
--   REBAR_BLOCK        engine block size in samples (required)
--   REBAR_SESSION_DIR  a folder that does not exist yet, for the session (required)
--   REBAR_SPEED        the dummy backend's driver, "Normal Speed" unless set
--   REBAR_MODEL_WAIT   seconds to wait for the variations after Regenerate, 5 unless set

local BLOCK = tonumber (os.getenv ("REBAR_BLOCK") or "")
local SESSION_DIR = os.getenv ("REBAR_SESSION_DIR")
local SPEED = os.getenv ("REBAR_SPEED") or "Normal Speed"
local MODEL_WAIT = tonumber (os.getenv ("REBAR_MODEL_WAIT") or "5")
assert (BLOCK and SESSION_DIR, "REBAR_BLOCK and REBAR_SESSION_DIR must be set")

local NAME = "rebar"
local RATE = 48000
local BEAT = RATE // 2        -- samples per beat at 120 BPM
local BAR = 4 * BEAT
local PASS_END = 8 * BAR + BEAT -- one beat into bar 9: the 8-bar pass is complete
local SELECTED = { 5, 8 }     -- Rebar's default "First bar" .. "Last bar"

-- The counter's shared-memory layout (rebar_test_counter.lua).
local C_ON, C_OFF, C_OTHER, C_CC, C_BEND = 0, 1, 2, 3, 4
local C_STOPPED_OTHER, C_STOPPED_NOTES, C_FIRST_OTHER, C_FIRST_OTHER_AT = 5, 6, 7, 8
local C_BAR = 9
-- The note source's (rebar_test_notes.lua).
local G_ON, G_OFF, G_BAR = 0, 1, 2

local failures = 0

-- One check: what should hold, and what was seen.
local function check (ok, name, expected, seen)
	if not ok then failures = failures + 1 end
	print (string.format ("CHECK %s %s: %s; saw %s", ok and "PASS" or "FAIL", name, expected, seen))
end

local function info (...)
	print ("INFO", ...)
end

local function now ()
	return ARDOUR.LuaAPI.monotonic_time () / 1e6
end

local function wait_until (what, timeout, cond)
	local t0 = now ()
	while not cond () do
		if now () - t0 > timeout then
			error ("timed out waiting for " .. what)
		end
		sleep (0.05)
	end
end

--------------------------------------------------------------------------------
-- The session and its track

local function find_processor (track, name)
	local i = 0
	while true do
		local p = track:nth_processor (i)
		if p:isnil () then return nil end
		if p:display_name () == name then return p end
		i = i + 1
	end
end

local function shmem_of (proc)
	return proc:to_insert ():plugin (0):to_luaproc ():shmem ():to_int (0):array ()
end

-- Rebar's parameters by the label Ardour shows: { index, descriptor }.
local function params_of (proc)
	local plugin = proc:to_insert ():plugin (0)
	local params = {}
	for j = 0, plugin:parameter_count () - 1 do
		local cid, _ = plugin:nth_parameter (j, false)
		if plugin:parameter_is_input (cid) then
			local _, t = plugin:get_parameter_descriptor (cid, ARDOUR.ParameterDescriptor ())
			params[t[2].label] = { index = j, desc = t[2] }
		end
	end
	return params
end

local function set_param (proc, params, label, value)
	local p = params[label]
	assert (p, "Rebar has no parameter \"" .. label .. "\"")
	assert (ARDOUR.LuaAPI.set_processor_param (proc, p.index, value), "cannot set " .. label)
end

local function get_param (proc, params, label)
	local v, _ = ARDOUR.LuaAPI.get_processor_param (proc, params[label].index, false)
	return v
end

-- The value of an enum parameter's choice: its scale point when Ardour has them, else its
-- index (Ardour maps a VST3 list parameter with n steps to 0..n).
local function choice (params, label, name, index)
	local names = {}
	for k, v in pairs (ARDOUR.LuaAPI.desc_scale_points (params[label].desc)) do
		if k == name then return v end
		names[#names + 1] = k
	end
	info (string.format ("\"%s\" has no scale point \"%s\" (has: %s), using %d", label, name, table.concat (names, ", "), index))
	return index
end

local function find_rebar_info ()
	local found = nil
	for p in ARDOUR.LuaAPI.list_plugins ():iter () do
		if p.type == ARDOUR.PluginType.VST3 then
			info ("VST3 plugin indexed:", p.name, p.unique_id, p.path)
			if p.name == "Rebar" then found = p end
		end
	end
	return found
end

local function build_track ()
	local midi1 = ARDOUR.ChanCount (ARDOUR.DataType ("midi"), 1)
	local tl = Session:new_midi_track (midi1, midi1, false, ARDOUR.PluginInfo (), nil, nil, 1,
		"Rebar", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, false, false)
	assert (tl:size () == 1, "cannot add a MIDI track")
	local track = tl:front ()
	-- Play from "disk" (the track has no regions), so nothing from the track's input mixes in.
	track:monitoring_control ():set_value (ARDOUR.MonitorChoice.MonitorDisk, PBD.GroupControlDisposition.NoGroup)

	local pi = find_rebar_info ()
	assert (pi, "Ardour has not indexed Rebar's VST3 (is the bundle on VST3_PATH and scanned?)")
	local notes = ARDOUR.LuaAPI.new_luaproc (Session, "Rebar Test Notes")
	local rebar = ARDOUR.LuaAPI.new_plugin (Session, pi.unique_id, ARDOUR.PluginType.VST3, "")
	local counter = ARDOUR.LuaAPI.new_luaproc (Session, "Rebar Test Counter")
	assert (not notes:isnil () and not counter:isnil (), "the test's Lua DSP scripts are not installed")
	assert (not rebar:isnil (), "Ardour cannot instantiate Rebar's VST3")
	assert (track:add_processor_by_index (notes, 0, nil, true) == 0, "cannot add the note source")
	assert (track:add_processor_by_index (rebar, 1, nil, true) == 0, "cannot add Rebar")
	assert (track:add_processor_by_index (counter, 2, nil, true) == 0, "cannot add the counter")
	return track
end

local function chain (track)
	local names = {}
	local i = 0
	while true do
		local p = track:nth_processor (i)
		if p:isnil () then break end
		names[#names + 1] = p:display_name ()
		i = i + 1
	end
	return table.concat (names, " > ")
end

--------------------------------------------------------------------------------
-- Playing

local function locate_start ()
	Session:request_locate (0, false, ARDOUR.LocateTransportDisposition.MustStop, ARDOUR.TransportRequestSource.TRS_UI)
	wait_until ("the locate to the start", 10, function ()
		return not Session:transport_rolling () and Session:transport_sample () == 0
	end)
	sleep (0.2)
end

-- Plays bars 1-8 (and one beat of bar 9) from the start and stops.
local function play_pass ()
	locate_start ()
	local t0 = now ()
	Session:request_roll (ARDOUR.TransportRequestSource.TRS_UI)
	wait_until ("the transport to roll", 10, function () return Session:transport_rolling () end)
	-- Real time at "Normal Speed": 16.5 s of song, with room for a slow machine.
	wait_until ("the end of bar 8", 60, function () return Session:transport_sample () >= PASS_END end)
	Session:request_stop (false, false, ARDOUR.TransportRequestSource.TRS_UI)
	wait_until ("the transport to stop", 10, function () return not Session:transport_rolling () end)
	sleep (0.3) -- the last note-offs
	return now () - t0
end

local function reset (arr, n)
	for j = 1, n do arr[j] = 0 end
end

-- A snapshot of the counters after a pass.
local function read_counts (gen, cnt)
	local c = {
		gen_on = gen[G_ON + 1], gen_off = gen[G_OFF + 1],
		on = cnt[C_ON + 1], off = cnt[C_OFF + 1], other = cnt[C_OTHER + 1],
		cc = cnt[C_CC + 1], bend = cnt[C_BEND + 1],
		stopped_other = cnt[C_STOPPED_OTHER + 1], stopped_notes = cnt[C_STOPPED_NOTES + 1],
		first_other = cnt[C_FIRST_OTHER + 1], first_other_at = cnt[C_FIRST_OTHER_AT + 1],
		bars = {},
	}
	for b = 1, 9 do
		local base = C_BAR + 3 * (b - 1) + 1
		c.bars[b] = { gen = gen[G_BAR + b], on = cnt[base], melody = cnt[base + 1], pitch_sum = cnt[base + 2] }
	end
	return c
end

local function describe (tag, c)
	local bars = {}
	for b = 1, 8 do
		local x = c.bars[b]
		bars[#bars + 1] = string.format ("%d:%d/%d/%d", b, x.on, x.melody, x.gen)
	end
	local first = ""
	if c.first_other >= 0 then
		first = string.format (" first-other=%06X@%d", c.first_other, c.first_other_at)
	end
	print (string.format ("COUNTS %s block=%d in-ons=%d out-ons=%d out-offs=%d other=%d (cc=%d bend=%d) stopped-other=%d stopped-notes=%d%s bars(out/melody/in)=%s",
		tag, BLOCK, c.gen_on, c.on, c.off, c.other, c.cc, c.bend, c.stopped_other, c.stopped_notes, first, table.concat (bars, " ")))
end

-- "bar:out/melody" for bars lo..hi: note-ons out, and how many of them are the input melody's.
local function bar_summary (c, lo, hi)
	local s = {}
	for b = lo, hi do
		s[#s + 1] = string.format ("%d:%d/%d", b, c.bars[b].on, c.bars[b].melody)
	end
	return "bar:out/melody " .. table.concat (s, " ")
end

local function other_summary (c)
	local first = ""
	if c.first_other >= 0 then
		first = string.format (", the first %02X %02X %02X at sample %d", c.first_other >> 16, (c.first_other >> 8) & 0xFF, c.first_other & 0xFF, c.first_other_at)
	end
	return string.format ("%d while rolling (%d CC, %d pitch bend), %d while stopped%s", c.other, c.cc, c.bend, c.stopped_other, first)
end

-- Bars lo..hi pass the input melody unchanged.
local function bars_pass_input (c, lo, hi)
	for b = lo, hi do
		local x = c.bars[b]
		if x.on ~= x.gen or x.melody ~= x.gen then return false end
	end
	return true
end

local function same_bars (a, b, lo, hi)
	for i = lo, hi do
		local x, y = a.bars[i], b.bars[i]
		if x.on ~= y.on or x.melody ~= y.melody or x.pitch_sum ~= y.pitch_sum then return false end
	end
	return true
end

--------------------------------------------------------------------------------
-- The test

local be = AudioEngine:set_backend ("None (Dummy)", "", "")
assert (be and not be:isnil (), "no dummy backend")
be:set_driver (SPEED)
be:set_buffer_size (BLOCK)

local t_start = now ()
assert (create_session (SESSION_DIR, NAME, RATE), "cannot create a session in " .. SESSION_DIR)
check (Session:get_block_size () == BLOCK, "block-size", string.format ("the engine runs %d-sample blocks", BLOCK), Session:get_block_size ())

do
	-- The note source and the counter assume Ardour's default tempo map: 120 BPM, 4/4 from 0.
	local tm = Temporal.TempoMap.read ()
	local bpm = tm:tempo_at (Temporal.timepos_t (0)):note_types_per_minute ()
	local per_bar = tm:meter_at (Temporal.timepos_t (0)):divisions_per_bar ()
	check (bpm == 120 and per_bar == 4, "tempo-map", "120 BPM, 4 beats a bar", string.format ("%s BPM, %s beats a bar", tostring (bpm), tostring (per_bar)))
end

local track = build_track ()
info ("chain:", chain (track))
local rebar = find_processor (track, "Rebar")
local params = params_of (rebar)
do
	local labels = {}
	for k, v in pairs (params) do
		labels[#labels + 1] = string.format ("%s[%d]=%s (%s..%s)", k, v.index, tostring (get_param (rebar, params, k)), tostring (v.desc.lower), tostring (v.desc.upper))
	end
	table.sort (labels)
	info ("Rebar parameters:", table.concat (labels, "; "))
end
set_param (rebar, params, "Capture", choice (params, "Capture", "Bars from song start", 1))
set_param (rebar, params, "Capture bars", 8)
check (get_param (rebar, params, "First bar") == SELECTED[1] and get_param (rebar, params, "Last bar") == SELECTED[2],
	"selection", "bars 5..8 selected (Rebar's default)",
	string.format ("%g..%g", get_param (rebar, params, "First bar"), get_param (rebar, params, "Last bar")))

Session:save_state ("", false, false, false)

local gen = shmem_of (find_processor (track, "Rebar Test Notes"))
local cnt = shmem_of (find_processor (track, "Rebar Test Counter"))

-- A. The capture pass.
reset (gen, 2 + 16); reset (cnt, C_BAR + 3 * 16); cnt[C_FIRST_OTHER + 1] = -1
local secs = play_pass ()
local a = read_counts (gen, cnt)
describe ("A-capture", a)
info (string.format ("pass A took %.1f s", secs))
check (a.gen_on >= 32 and a.on == a.gen_on, "A-notes-pass", "every input note-on comes out", string.format ("%d of %d", a.on, a.gen_on))
check (bars_pass_input (a, 1, 8), "A-unchanged", "bars 1-8 play the input melody before any Regenerate", bar_summary (a, 1, 8))
check (a.other == 0 and a.stopped_other == 0, "A-no-other-events", "no event that is not a note", other_summary (a))

-- Regenerate: a change from off to on asks for new variations.
set_param (rebar, params, "Regenerate", 0)
sleep (0.2)
set_param (rebar, params, "Regenerate", 1)
sleep (MODEL_WAIT)
set_param (rebar, params, "Regenerate", 0)
sleep (0.2)

-- B. The variation plays.
reset (gen, 2 + 16); reset (cnt, C_BAR + 3 * 16); cnt[C_FIRST_OTHER + 1] = -1
secs = play_pass ()
local b = read_counts (gen, cnt)
describe ("B-variation", b)
info (string.format ("pass B took %.1f s", secs))
check (bars_pass_input (b, 1, 4), "B-input-outside-selection", "bars 1-4 play the input melody", bar_summary (b, 1, 4))
check (not bars_pass_input (b, 5, 8), "B-variation-plays", "bars 5-8 differ from the input melody (a clip was captured, a variation plays)", bar_summary (b, 5, 8))
check (b.other == 0 and b.stopped_other == 0, "B-no-other-events", "no event that is not a note", other_summary (b))

-- C. Save, reload, play.
Session:save_state ("", false, false, false)
close_session ()
assert (load_session (SESSION_DIR, NAME), "cannot reload the session")
check (Session:get_block_size () == BLOCK, "reload-block-size", string.format ("the engine runs %d-sample blocks after the reload", BLOCK), Session:get_block_size ())
track = Session:route_by_name ("Rebar"):to_track ()
assert (not track:isnil (), "the reloaded session has no Rebar track")
info ("chain after reload:", chain (track))
rebar = find_processor (track, "Rebar")
assert (rebar, "the reloaded track has no Rebar")
params = params_of (rebar)
info ("Capture after reload:", tostring (get_param (rebar, params, "Capture")), "Regenerate:", tostring (get_param (rebar, params, "Regenerate")))
gen = shmem_of (find_processor (track, "Rebar Test Notes"))
cnt = shmem_of (find_processor (track, "Rebar Test Counter"))
-- The counters start from the load: events Rebar sends while the session loads count.
sleep (0.5)
reset (gen, 2 + 16)
secs = play_pass ()
local c = read_counts (gen, cnt)
describe ("C-reloaded", c)
info (string.format ("pass C took %.1f s", secs))
check (c.other == 0 and c.stopped_other == 0, "C-no-other-events", "no event that is not a note, from the reload on", other_summary (c))
check (bars_pass_input (c, 1, 4), "C-input-outside-selection", "bars 1-4 play the input melody", bar_summary (c, 1, 4))
check (not bars_pass_input (c, 5, 8), "C-variation-back", "bars 5-8 differ from the input melody without a new Regenerate", bar_summary (c, 5, 8))
check (same_bars (b, c, 5, 8), "C-same-variation", "bars 5-8 play the notes they played before the reload", "before: " .. bar_summary (b, 5, 8) .. ", after: " .. bar_summary (c, 5, 8))

close_session ()
info (string.format ("total %.1f s", now () - t_start))
print (failures == 0 and "RESULT PASS" or ("RESULT FAIL " .. failures))
