" Vim syntax file
" Language:   attnlang (attention dataflows on modeled accelerators)
" Filenames:  *.attn
"
" The word lists mirror attnlang/syntax/vocab.py; tests/tooling/test_editors.py
" checks that they agree.

if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

" Reserved words (vocab.KEYWORDS), grouped by what they do.
syn keyword attnDeclaration use hardware kernel memory unit op channel link
syn keyword attnDeclaration spec param dim process
syn keyword attnStatement   load store send recv discard on
syn keyword attnRepeat      for in by
syn keyword attnConditional if else where
syn keyword attnLogical     and or not

" vocab.BUILTINS (`where` is a keyword above), CONSTANTS, DTYPES, UNIT_KINDS.
syn keyword attnBuiltin  softmax exp log sqrt abs max min rowmax rowmin rowsum
syn keyword attnBuiltin  sum mean causal dot full zeros ones transpose
syn keyword attnConstant inf None True False
syn keyword attnType     f32 f16 bf16 f64 i32 i8
syn keyword attnUnitKind matrix vector

" The names that `kernel` and `hardware` declare.
syn match attnFunction '\%(\<kernel\s\+\)\@<=\h\w*'
syn match attnHardware '\%(\<hardware\s\+\)\@<=\h\w*'

" Numbers, then the longer shapes that start with one (a later match wins):
" 32 x 32 (SHAPE2) and quantities such as 940 MHz, 50 GiB/s, 1.5 pJ/B.
syn match attnNumber   '\<\d\+\%(\.\d\+\)\=\%([eE][-+]\=\d\+\)\=\>'
syn match attnShape    '\<\d\+[ \t]*x[ \t]*\d\+\>'
syn match attnQuantity '\v<\d+%(\.\d+)?%([eE][-+]?\d+)?[ \t]*%(Ki|Mi|Gi|Ti|k|M|G|T|m|u|n|p|f)?%(cycles|cycle|bits|bit|Hz|B|b|s|J|W)%(/%(Ki|Mi|Gi|Ti|k|M|G|T|m|u|n|p|f)?%(cycles|cycle|bits|bit|Hz|B|b|s|J|W))?>'

syn match attnOperator '->\|\.\.\|\*\*\|//\|[-+*/=!<>]=\|[-+*/%@<>=]'
syn match attnDelimiter '[,;:]'

" Loop annotations (vocab.ANNOTATIONS): @parallel(core), @pipeline(2), @unroll.
" Defined after attnOperator so that it wins over a bare '@'.
syn match attnAnnotation '@\%(parallel\|pipeline\|unroll\)\>'

syn region attnString start=+"+ end=+"\|$+ oneline contains=@Spell
syn keyword attnTodo contained TODO FIXME XXX NOTE
syn match attnComment '#.*$' contains=attnTodo,@Spell

hi def link attnDeclaration Keyword
hi def link attnStatement   Statement
hi def link attnRepeat      Repeat
hi def link attnConditional Conditional
hi def link attnLogical     Operator
hi def link attnBuiltin     Function
hi def link attnConstant    Constant
hi def link attnType        Type
hi def link attnUnitKind    Type
hi def link attnFunction    Function
hi def link attnHardware    Structure
hi def link attnNumber      Number
hi def link attnShape       Number
hi def link attnQuantity    Float
hi def link attnAnnotation  PreProc
hi def link attnOperator    Operator
hi def link attnDelimiter   Delimiter
hi def link attnString      String
hi def link attnTodo        Todo
hi def link attnComment     Comment

let b:current_syntax = 'attn'

let &cpo = s:cpo_save
unlet s:cpo_save
