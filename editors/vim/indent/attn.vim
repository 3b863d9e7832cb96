" Vim indent file for attnlang (*.attn): one 'shiftwidth' per open brace,
" bracket or parenthesis; a line that starts with a closer goes back one.
" A kernel header's 'on' and 'spec' lines stand one level in from it.
if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal autoindent
setlocal indentexpr=AttnIndent(v:lnum)
setlocal indentkeys=0{,0},0),0],!^F,o,O

let b:undo_indent = 'setlocal autoindent< indentexpr< indentkeys<'

if exists('*AttnIndent')
  finish
endif

" The line without its strings and its comment, so '{' in them does not count.
function! s:Code(lnum) abort
  let line = substitute(getline(a:lnum), '"[^"]*"', '""', 'g')
  return substitute(line, '#.*$', '', '')
endfunction

function! s:Count(text, chars) abort
  return len(substitute(a:text, '[^' . a:chars . ']', '', 'g'))
endfunction

function! AttnIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let code = s:Code(prev)
  let base = indent(prev)
  " The line after an 'on' or 'spec' clause starts from the kernel header's column.
  if code =~# '^\s*\%(on\|spec\)\>'
    let base -= shiftwidth()
  endif
  let net = s:Count(code, '{[(') - s:Count(code, '}\])')
  " A closer that starts the previous line was already dedented there.
  if code =~# '^\s*[}\])]'
    let net += 1
  endif
  let ind = base + shiftwidth() * (net > 0 ? 1 : net < 0 ? -1 : 0)
  if getline(a:lnum) =~# '^\s*[}\])]'
    let ind -= shiftwidth()
  endif
  if getline(a:lnum) =~# '^\s*\%(on\|spec\)\>'
    let ind += shiftwidth()
  endif
  return max([ind, 0])
endfunction
