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

complete -c apollo -n "__fish_apollo_needs_command" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace); RUST_LOG works too'
complete -c apollo -n "__fish_apollo_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_needs_command" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_needs_command" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "inspect" -d 'Show a video\'s metadata, the clips Apollo samples from it and its video prompt'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c apollo -n "__fish_apollo_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l frames -d 'Write every sampled frame as PNG into this directory (created if missing)' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l contact-sheet -d 'Write one PNG with all sampled frames in a grid, labelled with their times' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l model-dir -d 'Local Apollo checkpoint directory: tokens per clip, clip duration and context length come from its configs, and its tokenizer counts the prompt\'s text tokens' -r -F
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l clip-duration -d 'Seconds of video per clip [default: 2]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l frames-per-clip -d 'Frames sampled per clip [default: 4]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l tokens-per-clip -d 'Video tokens per clip (the connector\'s num_output_tokens) [default: 128]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l model-max-length -d 'Context length the clip budget is sized against [default: 16384]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l clip-sampling-ratio -d 'Share of the context that video tokens may take [default: 0.65]' -r
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -l json -d 'One JSON object per video, one per line'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace); RUST_LOG works too'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s v -l verbose -d 'More logging on stderr (-v: debug, -vv: trace); RUST_LOG works too'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s h -l help -d 'Print help'
complete -c apollo -n "__fish_apollo_using_subcommand completions" -s V -l version -d 'Print version'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from inspect completions help" -f -a "inspect" -d 'Show a video\'s metadata, the clips Apollo samples from it and its video prompt'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from inspect completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c apollo -n "__fish_apollo_using_subcommand help; and not __fish_seen_subcommand_from inspect completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
