# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_apollo_global_optspecs
    string join \n v/verbose q/quiet h/help V/version
end

function __fish_apollo_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_apollo_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_apollo_using_subcommand
    set -l cmd (__fish_apollo_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c apollo -n "__fish_apollo_needs_command" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_needs_command" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_needs_command" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "ask" -d 'Answer questions about a video; the answers stream to stdout'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "caption" -d 'Ask one question (by default, for a detailed description) of many videos: JSON Lines'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "chat" -d 'Talk about a video: questions and follow-ups, the video encoded once'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "serve" -d 'Serve the model over HTTP with OpenAI\'s chat completions API (video_url parts)'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "cache" -d 'Show or clear the encoded-video cache'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "inspect" -d 'Show a video\'s metadata, the clips Apollo samples from it and its video prompt'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "download" -d 'Fetch a checkpoint into the Hugging Face cache and print where it is'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "bench" -d 'Measure speed and memory at a published model size with random weights (JSON)'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "man" -d 'Print the manual page of apollo or of one of its commands (roff)'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l model -d 'Hugging Face repo of an Apollo checkpoint, downloaded into the Hugging Face cache on first use (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply)' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l revision -d 'Branch, tag or commit of --model' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l model-dir -d 'A local checkpoint directory in the published layout, used instead of --model' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l device -d 'auto (CUDA when built with it and a GPU is present), cpu, cuda or cuda:N' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l dtype -d 'Weights and activations: auto is bf16 on CUDA, f32 on the CPU' -r -f -a "auto\t''
bf16\t''
f16\t''
f32\t''"
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l threads -d 'Threads for decoding video, 1 to 1024: decoders at work on separate keyframe groups, the rest shared among their own threads [default: the machine\'s cores]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l temperature -d 'Temperature of the token sampling, 0 to 100; 0 takes the most likely token every time' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l top-p -d 'Nucleus sampling: draw from the most likely tokens that together hold this probability, above 0 and at most 1' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l top-k -d 'Draw from the K most likely tokens, 0 (all) to the model\'s vocabulary size [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l repetition-penalty -d 'Penalty on tokens already generated, above 0 and at most 100 (1 is none) [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l max-new-tokens -d 'Longest answer, in tokens, 1 to 1048576 (the model\'s context ends it sooner)' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l seed -d 'Seed of the token sampling: the same seed, video, question and device give the same answer [default: random; --json reports it]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l logprobs -d 'The top-K log-probabilities of each generated token, 0 to 20, in the JSON record' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l clip-duration -d 'Seconds of video per clip, 0.1 to 3600 [default: the model\'s, 2]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l frames-per-clip -d 'Frames sampled per clip, 1 to 256; with a model, a count its encoders take [default: 4]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l model-max-length -d 'Context length the clip budget is sized against, 1 to 1048576; with a model, at most its context [default: the model\'s, 16384]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l clip-sampling-ratio -d 'Share of the context that video tokens may take, above 0 and at most 1 [default: 0.65]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l start -d 'Only the part of the video from TIME on, seen as if it were the whole video: seconds (90, 12.5) or [H:]MM:SS[.fff] [default: its start]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l end -d 'Only the part of the video before TIME (past its end: to its end) [default: its end]' -r
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l json -d 'Print one JSON object per question after generation instead of streaming the answers'
complete -c apollo -n "__fish_apollo_using_subcommand ask" -l no-cache -d 'Neither read nor write the encoded-video cache (see `apollo cache`)'
complete -c apollo -n "__fish_apollo_using_subcommand ask" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand ask" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand ask" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand ask" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l from -d 'Also read video paths from FILE, one a line ("-" for stdin)' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l question -d 'The question asked of every video; given several times, each is asked in order' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l output-dir -d 'Also write each record to DIR/<video name>.json, or DIR/<video name>.<n>.json for the n-th of several questions (written whole or not at all)' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l model -d 'Hugging Face repo of an Apollo checkpoint, downloaded into the Hugging Face cache on first use (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply)' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l revision -d 'Branch, tag or commit of --model' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l model-dir -d 'A local checkpoint directory in the published layout, used instead of --model' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l device -d 'auto (CUDA when built with it and a GPU is present), cpu, cuda or cuda:N' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l dtype -d 'Weights and activations: auto is bf16 on CUDA, f32 on the CPU' -r -f -a "auto\t''
bf16\t''
f16\t''
f32\t''"
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l threads -d 'Threads for decoding video, 1 to 1024: decoders at work on separate keyframe groups, the rest shared among their own threads [default: the machine\'s cores]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l temperature -d 'Temperature of the token sampling, 0 to 100; 0 takes the most likely token every time' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l top-p -d 'Nucleus sampling: draw from the most likely tokens that together hold this probability, above 0 and at most 1' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l top-k -d 'Draw from the K most likely tokens, 0 (all) to the model\'s vocabulary size [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l repetition-penalty -d 'Penalty on tokens already generated, above 0 and at most 100 (1 is none) [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l max-new-tokens -d 'Longest answer, in tokens, 1 to 1048576 (the model\'s context ends it sooner)' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l seed -d 'Seed of the token sampling: the same seed, video, question and device give the same answer [default: random; --json reports it]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l logprobs -d 'The top-K log-probabilities of each generated token, 0 to 20, in the JSON record' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l clip-duration -d 'Seconds of video per clip, 0.1 to 3600 [default: the model\'s, 2]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l frames-per-clip -d 'Frames sampled per clip, 1 to 256; with a model, a count its encoders take [default: 4]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l model-max-length -d 'Context length the clip budget is sized against, 1 to 1048576; with a model, at most its context [default: the model\'s, 16384]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l clip-sampling-ratio -d 'Share of the context that video tokens may take, above 0 and at most 1 [default: 0.65]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l start -d 'Only the part of the video from TIME on, seen as if it were the whole video: seconds (90, 12.5) or [H:]MM:SS[.fff] [default: its start]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l end -d 'Only the part of the video before TIME (past its end: to its end) [default: its end]' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l shard -d 'Answer only the videos of shard INDEX (from 0) of COUNT: those whose path, as given, hashes into it. Without it, a Slurm array task\'s or Kubernetes Indexed Job\'s index chooses the shard (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_STEP; JOB_COMPLETION_INDEX); --shard 0/1 ignores them' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l num-shards -d 'The shard count when the scheduler gives only the index (JOB_COMPLETION_INDEX, or a Slurm array rerunning some shards: its task IDs are then the shard indices)' -r
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l skip-existing -d 'Skip videos whose record is already in --output-dir (resume a batch)'
complete -c apollo -n "__fish_apollo_using_subcommand caption" -l no-cache -d 'Neither read nor write the encoded-video cache (see `apollo cache`)'
complete -c apollo -n "__fish_apollo_using_subcommand caption" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand caption" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand caption" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand caption" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l model -d 'Hugging Face repo of an Apollo checkpoint, downloaded into the Hugging Face cache on first use (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply)' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l revision -d 'Branch, tag or commit of --model' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l model-dir -d 'A local checkpoint directory in the published layout, used instead of --model' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l device -d 'auto (CUDA when built with it and a GPU is present), cpu, cuda or cuda:N' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l dtype -d 'Weights and activations: auto is bf16 on CUDA, f32 on the CPU' -r -f -a "auto\t''
bf16\t''
f16\t''
f32\t''"
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l threads -d 'Threads for decoding video, 1 to 1024: decoders at work on separate keyframe groups, the rest shared among their own threads [default: the machine\'s cores]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l temperature -d 'Temperature of the token sampling, 0 to 100; 0 takes the most likely token every time' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l top-p -d 'Nucleus sampling: draw from the most likely tokens that together hold this probability, above 0 and at most 1' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l top-k -d 'Draw from the K most likely tokens, 0 (all) to the model\'s vocabulary size [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l repetition-penalty -d 'Penalty on tokens already generated, above 0 and at most 100 (1 is none) [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l max-new-tokens -d 'Longest answer, in tokens, 1 to 1048576 (the model\'s context ends it sooner)' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l seed -d 'Seed of the token sampling: the same seed, video, question and device give the same answer [default: random; --json reports it]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l logprobs -d 'The top-K log-probabilities of each generated token, 0 to 20, in the JSON record' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l clip-duration -d 'Seconds of video per clip, 0.1 to 3600 [default: the model\'s, 2]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l frames-per-clip -d 'Frames sampled per clip, 1 to 256; with a model, a count its encoders take [default: 4]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l model-max-length -d 'Context length the clip budget is sized against, 1 to 1048576; with a model, at most its context [default: the model\'s, 16384]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l clip-sampling-ratio -d 'Share of the context that video tokens may take, above 0 and at most 1 [default: 0.65]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l start -d 'Only the part of the video from TIME on, seen as if it were the whole video: seconds (90, 12.5) or [H:]MM:SS[.fff] [default: its start]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l end -d 'Only the part of the video before TIME (past its end: to its end) [default: its end]' -r
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l json -d 'One JSON object per answer (a line each) instead of the answer\'s text'
complete -c apollo -n "__fish_apollo_using_subcommand chat" -l no-cache -d 'Neither read nor write the encoded-video cache (see `apollo cache`)'
complete -c apollo -n "__fish_apollo_using_subcommand chat" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand chat" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand chat" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand chat" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l host -d 'The address to listen on; 127.0.0.1 takes connections from this machine only, 0.0.0.0 from anywhere' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l port -d 'The port to listen on; 0 picks a free one (the ready line on stderr names it, even with -q)' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l api-key -d 'Every request but GET /health must carry `Authorization: Bearer KEY`' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l allowed-dir -d 'A directory whose videos requests may name by path (links and .. resolved first); give it several times for several. Without it, no local path is read' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l max-queue -d 'Requests that may wait while one is answered, 1 to 4096; more are refused with 429' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l max-request-size -d 'The largest request body, e.g. 64M (binary suffixes K, M, G); larger ones get 413' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l max-video-size -d 'The largest video of a data: URL or fetched from an http(s) URL, e.g. 1G; larger ones get 413' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l model -d 'Hugging Face repo of an Apollo checkpoint, downloaded into the Hugging Face cache on first use (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply)' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l revision -d 'Branch, tag or commit of --model' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l model-dir -d 'A local checkpoint directory in the published layout, used instead of --model' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l device -d 'auto (CUDA when built with it and a GPU is present), cpu, cuda or cuda:N' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l dtype -d 'Weights and activations: auto is bf16 on CUDA, f32 on the CPU' -r -f -a "auto\t''
bf16\t''
f16\t''
f32\t''"
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l threads -d 'Threads for decoding video, 1 to 1024: decoders at work on separate keyframe groups, the rest shared among their own threads [default: the machine\'s cores]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l temperature -d 'Temperature of the token sampling, 0 to 100; 0 takes the most likely token every time' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l top-p -d 'Nucleus sampling: draw from the most likely tokens that together hold this probability, above 0 and at most 1' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l top-k -d 'Draw from the K most likely tokens, 0 (all) to the model\'s vocabulary size [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l repetition-penalty -d 'Penalty on tokens already generated, above 0 and at most 100 (1 is none) [default: the model\'s generation config]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l max-new-tokens -d 'Longest answer, in tokens, 1 to 1048576 (the model\'s context ends it sooner)' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l seed -d 'Seed of the token sampling: the same seed, video, question and device give the same answer [default: random; --json reports it]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l clip-duration -d 'Seconds of video per clip, 0.1 to 3600 [default: the model\'s, 2]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l frames-per-clip -d 'Frames sampled per clip, 1 to 256; with a model, a count its encoders take [default: 4]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l model-max-length -d 'Context length the clip budget is sized against, 1 to 1048576; with a model, at most its context [default: the model\'s, 16384]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l clip-sampling-ratio -d 'Share of the context that video tokens may take, above 0 and at most 1 [default: 0.65]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l start -d 'Only the part of the video from TIME on, seen as if it were the whole video: seconds (90, 12.5) or [H:]MM:SS[.fff] [default: its start]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l end -d 'Only the part of the video before TIME (past its end: to its end) [default: its end]' -r
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l allow-remote -d 'Fetch http(s) video URLs (10 s to connect, 30 s between reads, 5 minutes in all, at most --max-video-size); refused without it'
complete -c apollo -n "__fish_apollo_using_subcommand serve" -l no-cache -d 'Neither read nor write the encoded-video cache (see `apollo cache`)'
complete -c apollo -n "__fish_apollo_using_subcommand serve" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand serve" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand serve" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand serve" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and not __fish_seen_subcommand_from info clear help" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and not __fish_seen_subcommand_from info clear help" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and not __fish_seen_subcommand_from info clear help" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and not __fish_seen_subcommand_from info clear help" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and not __fish_seen_subcommand_from info clear help" -f -a "info" -d 'Where the cache is, how many encoded videos it holds, their size and the limit'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and not __fish_seen_subcommand_from info clear help" -f -a "clear" -d 'Remove every encoded video (and the file-hash memos) from the cache'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and not __fish_seen_subcommand_from info clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from info" -l json -d 'One JSON object: location, entries, bytes, max_bytes'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from info" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from info" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from info" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from info" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from clear" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from clear" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from clear" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "info" -d 'Where the cache is, how many encoded videos it holds, their size and the limit'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Remove every encoded video (and the file-hash memos) from the cache'
complete -c apollo -n "__fish_apollo_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l frames -d 'Write every sampled frame as PNG into this directory (created if missing)' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l contact-sheet -d 'Write one PNG with all sampled frames in a grid, labelled with their times ("-" for stdout, instead of the report)' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l model-dir -d 'Local Apollo checkpoint directory: tokens per clip, clip duration and context length come from its configs, and its tokenizer counts the prompt\'s text tokens' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l question -d 'The question whose chat prompt --model-dir counts, so that the total is what `ask` and `caption` report as `tokens.prompt`' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l clip-duration -d 'Seconds of video per clip, 0.1 to 3600 [default: the model\'s, 2]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l frames-per-clip -d 'Frames sampled per clip, 1 to 256; with a model, a count its encoders take [default: 4]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l model-max-length -d 'Context length the clip budget is sized against, 1 to 1048576; with a model, at most its context [default: the model\'s, 16384]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l clip-sampling-ratio -d 'Share of the context that video tokens may take, above 0 and at most 1 [default: 0.65]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l start -d 'Only the part of the video from TIME on, seen as if it were the whole video: seconds (90, 12.5) or [H:]MM:SS[.fff] [default: its start]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l end -d 'Only the part of the video before TIME (past its end: to its end) [default: its end]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l tokens-per-clip -d 'Video tokens per clip (the connector\'s num_output_tokens), 1 to 65536, to plan for another model [default: the model\'s, 128]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l json -d 'One JSON object per video, one per line'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand download" -l revision -d 'Branch, tag or commit' -r
complete -c apollo -n "__fish_apollo_using_subcommand download" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand download" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand download" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand download" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l threads -d 'Threads for decoding video, 1 to 1024: decoders at work on separate keyframe groups, the rest shared among their own threads [default: the machine\'s cores]' -r
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l model-dir -d 'Use this checkpoint (published layout) instead of a generated one' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l preset -d 'Which published configuration\'s widths the random checkpoint gets' -r -f -a "1.5b\t''
3b\t''
7b\t''"
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l layers -d 'Layers each stack runs, 1 to 64 [default: all of the published model]' -r
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l work-dir -d 'Where the generated checkpoint, video and plan are kept between runs [default: <temp dir>/apollo-bench]' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l video -d 'Benchmark this video instead of the synthetic one' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l video-seconds -d 'Length of the synthetic video, 1 to 86400 (a day)' -r
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l video-size -d 'Frame size of the synthetic video, WxH, even sides from 16 to 7680' -r
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l video-fps -d 'Frame rate of the synthetic video, 1 to 240' -r
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l new-tokens -d 'Tokens generated for the decode speed (with --compare: greedy tokens compared), 1 to 65536 (the model\'s context ends them sooner)' -r
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l device -d 'auto, cpu, cuda or cuda:N' -r
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l dtype -d 'auto is bf16 on CUDA, f32 on the CPU' -r -f -a "auto\t''
bf16\t''
f16\t''
f32\t''"
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l compare -d 'Instead of timing: run the model on --device/--dtype and on the CPU in f32 with the same inputs, and report the largest difference at each stage and whether greedy ids agree (exit 1 when outside bf16\'s or f32\'s bounds)'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l cache -d 'Instead of the stage timings: the time to first token of questions about one video, side by side: the first (encoded-video cache empty), one in a later run (cache hit), a follow-up in the same process, another question in the same process (a cache of its own in the work folder)'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l video-only -d 'Only write the synthetic video into the work folder (unless it is there) and print its path: for machines whose apollo has no encoder (see scripts/build-portable.sh)'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -l decode-only -d 'Instead of the stage timings: only decode the frames of the video\'s default plan to RGB (opening included), and report frames, seconds, frames per second, threads, and the pictures decoded against the fewest those frames need'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand bench" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand man" -s v -l verbose -d 'More logging on stderr: -v shows apollo\'s steps (files, plan, batches, timings), -vv its traces too; RUST_LOG (e.g. RUST_LOG=debug) also reaches the libraries\' logs'
complete -c apollo -n "__fish_apollo_using_subcommand man" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand man" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand man" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "ask" -d 'Answer questions about a video; the answers stream to stdout'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "caption" -d 'Ask one question (by default, for a detailed description) of many videos: JSON Lines'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "chat" -d 'Talk about a video: questions and follow-ups, the video encoded once'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "serve" -d 'Serve the model over HTTP with OpenAI\'s chat completions API (video_url parts)'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "cache" -d 'Show or clear the encoded-video cache'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "inspect" -d 'Show a video\'s metadata, the clips Apollo samples from it and its video prompt'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "download" -d 'Fetch a checkpoint into the Hugging Face cache and print where it is'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "bench" -d 'Measure speed and memory at a published model size with random weights (JSON)'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "man" -d 'Print the manual page of apollo or of one of its commands (roff)'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from ask caption chat serve cache inspect download bench completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c apollo -n "__fish_apollo_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "info" -d 'Where the cache is, how many encoded videos it holds, their size and the limit'
complete -c apollo -n "__fish_apollo_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "clear" -d 'Remove every encoded video (and the file-hash memos) from the cache'
