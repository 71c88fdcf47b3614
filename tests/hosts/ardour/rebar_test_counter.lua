ardour {
	["type"]    = "dsp",
	name        = "Rebar Test Counter",
	category    = "Utility",
	license     = "MIT OR Apache-2.0",
	author      = "Rebar",
	description = [[Counts the MIDI events that reach it, for Rebar's host tests, and passes them on.
Note-ons are placed on the song's beat grid (120 BPM, 4/4, from the song start) and compared with
the melody that "Rebar Test Notes" plays, so a test can tell the input melody from new notes bar
by bar. Counters live in shared memory as int slots, see the SLOT_* names below.]]
}

-- Keep in step with rebar_test_notes.lua.
local MELODY = {
	60, 62, 64, 65,  67, 65, 64, 62,  60, 64, 67, 72,  71, 67, 64, 62,
	60, 62, 64, 65,  67, 69, 71, 72,  71, 69, 67, 65,  64, 62, 60, 55,
}
local BPM = 120
local BARS = 16 -- per-bar slots; later bars count in the last one

-- Totals while the transport rolls.
local SLOT_ON = 0          -- note-ons (velocity > 0)
local SLOT_OFF = 1         -- note-offs (0x8n, or 0x9n with velocity 0)
local SLOT_OTHER = 2       -- events that are neither
local SLOT_CC = 3          -- of which control changes (0xBn)
local SLOT_BEND = 4        -- and pitch bends (0xEn)
-- While the transport is stopped.
local SLOT_STOPPED_OTHER = 5 -- events that are not notes
local SLOT_STOPPED_NOTES = 6 -- note-ons and note-offs
-- The first event that is not a note, rolling or not: status << 16 | data1 << 8 | data2
-- (-1 while there is none), and the transport sample it came at.
local SLOT_FIRST_OTHER = 7
local SLOT_FIRST_OTHER_AT = 8
-- Per bar b (1-based), from SLOT_BAR + (b - 1) * 3: note-ons, note-ons that are the melody's
-- note on its beat (within an eighth of a beat), and the sum of the note-ons' pitches.
local SLOT_BAR = 9
local SLOTS = SLOT_BAR + 3 * BARS

local spb

function dsp_ioconfig ()
	return { { midi_in = 1, midi_out = 1, audio_in = 0, audio_out = 0 } }
end

function dsp_init (rate)
	spb = math.floor (rate * 60 / BPM + 0.5)
	self:shmem ():allocate (SLOTS)
	self:shmem ():clear ()
	self:shmem ():atomic_set_int (SLOT_FIRST_OTHER, -1)
end

local function add (i, v)
	self:shmem ():atomic_set_int (i, self:shmem ():atomic_get_int (i) + v)
end

function dsp_run (_, _, n_samples)
	local rolling = Session:transport_rolling ()
	local s0 = Session:transport_sample ()
	local cnt = 1
	for _, ev in ipairs (midiin) do
		midiout[cnt] = ev
		cnt = cnt + 1
		local d = ev.data
		local kind = #d > 0 and (d[1] >> 4) or -1
		local is_note = (kind == 8 or kind == 9) and #d == 3
		local at = s0 + ev.time - 1
		if not is_note then
			add (rolling and SLOT_OTHER or SLOT_STOPPED_OTHER, 1)
			if rolling and kind == 0xB then add (SLOT_CC, 1) end
			if rolling and kind == 0xE then add (SLOT_BEND, 1) end
			if self:shmem ():atomic_get_int (SLOT_FIRST_OTHER) < 0 then
				local v = 0
				for j = 1, 3 do v = (v << 8) | (d[j] or 0) end
				self:shmem ():atomic_set_int (SLOT_FIRST_OTHER_AT, at)
				self:shmem ():atomic_set_int (SLOT_FIRST_OTHER, v)
			end
		elseif not rolling then
			add (SLOT_STOPPED_NOTES, 1)
		elseif kind == 9 and d[3] > 0 then
			add (SLOT_ON, 1)
			local beat = (at + spb // 2) // spb
			local bar = math.min (at // (4 * spb), BARS - 1)
			local base = SLOT_BAR + 3 * bar
			add (base, 1)
			if math.abs (at - beat * spb) <= spb // 8 and d[2] == MELODY[beat % #MELODY + 1] then
				add (base + 1, 1)
			end
			add (base + 2, d[2])
		else
			add (SLOT_OFF, 1)
		end
	end
end
