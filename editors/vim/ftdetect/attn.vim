" attnlang: *.attn files are attention dataflows on modeled accelerators.
autocmd BufRead,BufNewFile *.attn setfiletype attn
