ardour {
	["type"]    = "dsp",
	name        = "Rebar Test Notes",
	category    = "Utility",
	license     = "MIT OR Apache-2.0",
	author      = "Rebar",
	description = [[Plays a fixed 8-bar melody in sync with the transport, for Rebar's host tests:
one quarter note per beat, half a beat long, from bar 1 at 120 BPM in 4/4. The pitch of beat n
(0-based from the song start) is MELODY[n % 32 + 1]. Input MIDI is dropped, so the notes out are
exactly the melody. Counters in shared memory (int slots): 0 note-ons sent, 1 note-offs sent,
2 + b note-ons sent in bar b + 1 (b = 0..15, later bars in the last slot).]]
}

-- Keep in step with rebar_test_counter.lua.
local MELODY = {
	60, 62, 64, 65,  67, 65, 64, 62,  60, 64, 67, 72,  71, 67, 64, 62,
	60, 62, 64, 65,  67, 69, 71, 72,  71, 69, 67, 65,  64, 62, 60, 55,
}
local BPM = 120
local SLOTS = 2 + 16

local spb     -- samples per beat
local sounding = nil -- the pitch of the note now on, if any

function dsp_ioconfig ()
	return { { midi_in = 1, midi_out = 1, audio_in = 0, audio_out = 0 } }
end

function dsp_init (rate)
	spb = math.floor (rate * 60 / BPM + 0.5)
	self:shmem ():allocate (SLOTS)
	self:shmem ():clear ()
end

local function bump (i)
	self:shmem ():atomic_set_int (i, self:shmem ():atomic_get_int (i) + 1)
end

function dsp_run (_, _, n_samples)
	local cnt = 1
	local function tx (offset, data)
		midiout[cnt] = { time = offset + 1, data = data }
		cnt = cnt + 1
	end

	if not Session:transport_rolling () then
		if sounding then
			tx (0, { 0x80, sounding, 0 })
			sounding = nil
			bump (1)
		end
		return
	end

	local s0 = Session:transport_sample ()
	local s1 = s0 + n_samples
	local half = spb // 2
	-- Events fall on the half beats: even ones start a note, odd ones end it.
	local h = (s0 + half - 1) // half
	while h * half < s1 do
		local t = h * half
		local beat = h // 2
		if h % 2 == 0 then
			if sounding then
				tx (t - s0, { 0x80, sounding, 0 })
				bump (1)
			end
			local pitch = MELODY[beat % #MELODY + 1]
			tx (t - s0, { 0x90, pitch, 100 })
			sounding = pitch
			bump (0)
			bump (2 + math.min (beat // 4, 15))
		elseif sounding then
			tx (t - s0, { 0x80, sounding, 0 })
			sounding = nil
			bump (1)
		end
		h = h + 1
	end
end
