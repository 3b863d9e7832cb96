" Used by test_editors.py: write the syntax group under every byte of the
" current buffer to $ATTN_SYN_OUT, one line per buffer line, the groups
" separated by spaces ('-' where there is none), then quit.
let s:out = []
for s:lnum in range(1, line('$'))
  let s:groups = []
  for s:col in range(1, len(getline(s:lnum)))
    let s:name = synIDattr(synID(s:lnum, s:col, 1), 'name')
    call add(s:groups, empty(s:name) ? '-' : s:name)
  endfor
  call add(s:out, join(s:groups, ' '))
endfor
call add(s:out, 'filetype=' . &filetype . ' syntax=' . get(b:, 'current_syntax', '')
      \ . ' sw=' . &shiftwidth . ' et=' . &expandtab . ' cms=' . &commentstring)
call writefile(s:out, $ATTN_SYN_OUT)
qall!
