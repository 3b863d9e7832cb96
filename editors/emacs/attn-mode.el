;;; attn-mode.el --- Major mode for attnlang dataflows  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "25.1"))
;; Keywords: languages

;;; Commentary:

;; A major mode for attnlang (.attn files): attention dataflows on modeled
;; accelerators.  It gives font-lock for keywords, builtins, types, quantities
;; with units (940 MHz, 50 GiB/s, 1.5 pJ/B) and loop annotations
;; (@parallel, @pipeline, @unroll), `#' comments, and indentation by brace
;; depth.
;;
;; The word lists mirror attnlang/syntax/vocab.py;
;; tests/tooling/test_editors.py checks that they agree.

;;; Code:

(defgroup attn nil
  "Major mode for attnlang."
  :group 'languages
  :prefix "attn-")

(defcustom attn-indent-offset 2
  "Columns of indentation per open brace, bracket or parenthesis."
  :type 'integer
  :safe #'integerp)

(defface attn-quantity-face
  '((t :inherit font-lock-constant-face))
  "Face for quantities with a unit of measure, such as 940 MHz.")

(defconst attn-keywords
  '("use" "hardware" "kernel" "memory" "unit" "op" "channel" "link"
    "on" "spec" "param" "dim" "where" "for" "in" "by" "load" "store"
    "send" "recv" "discard" "if" "else" "process" "and" "or" "not")
  "Reserved words (vocab.KEYWORDS).")

(defconst attn-builtins
  '("softmax" "exp" "log" "sqrt" "abs" "max" "min" "rowmax" "rowmin"
    "rowsum" "sum" "mean" "where" "causal" "dot" "full" "zeros" "ones"
    "transpose")
  "Functions callable in tensor expressions (vocab.BUILTINS).")

(defconst attn-constants '("inf" "None" "True" "False")
  "Names with a fixed meaning (vocab.CONSTANTS).")

(defconst attn-types
  '("f32" "f16" "bf16" "f64" "i32" "i8" "matrix" "vector")
  "Element types and kinds of unit (vocab.DTYPES and vocab.UNIT_KINDS).")

(defconst attn-annotations '("parallel" "pipeline" "unroll")
  "Loop annotations, written with a leading @ (vocab.ANNOTATIONS).")

(defconst attn-unit-prefixes
  '("Ki" "Mi" "Gi" "Ti" "k" "M" "G" "T" "m" "u" "n" "p" "f")
  "Prefixes of units of measure (vocab.PREFIXES).")

(defconst attn-measure-units
  '("Hz" "B" "b" "bit" "bits" "s" "J" "W" "cycle" "cycles")
  "Base units of measure (vocab.MEASURE_UNITS).")

(defconst attn--quantity-regexp
  (let ((unit (concat "\\(?:" (regexp-opt attn-unit-prefixes) "\\)?"
                      (regexp-opt attn-measure-units))))
    (concat "\\_<[0-9]+\\(?:\\.[0-9]+\\)?\\(?:[eE][-+]?[0-9]+\\)?[ \t]*"
            unit "\\(?:/" unit "\\)?\\_>"))
  "A number with a unit, as the grammar's QUANTITY terminal.")

(defconst attn--name-regexp "\\([A-Za-z_][A-Za-z0-9_]*\\)")

(defvar attn-font-lock-keywords
  `((,attn--quantity-regexp . 'attn-quantity-face)
    ("\\_<[0-9]+[ \t]*x[ \t]*[0-9]+\\_>" . 'attn-quantity-face)
    (,(concat "@" (regexp-opt attn-annotations 'symbols))
     . font-lock-preprocessor-face)
    (,(concat "\\_<kernel[ \t]+" attn--name-regexp)
     1 font-lock-function-name-face)
    (,(concat "\\_<hardware[ \t]+" attn--name-regexp)
     1 font-lock-type-face)
    ;; Keywords come before builtins: `where' is both, and the first wins.
    (,(regexp-opt attn-keywords 'symbols) . font-lock-keyword-face)
    (,(regexp-opt attn-types 'symbols) . font-lock-type-face)
    (,(regexp-opt attn-constants 'symbols) . font-lock-constant-face)
    (,(regexp-opt attn-builtins 'symbols) . font-lock-builtin-face))
  "Font-lock rules for `attn-mode'.")

(defvar attn-mode-syntax-table
  (let ((table (make-syntax-table)))
    (modify-syntax-entry ?# "<" table)
    (modify-syntax-entry ?\n ">" table)
    (modify-syntax-entry ?\" "\"" table)
    (modify-syntax-entry ?_ "_" table)
    (modify-syntax-entry ?' "." table)
    (dolist (char '(?+ ?- ?* ?/ ?% ?@ ?< ?> ?= ?! ?. ?, ?\; ?:))
      (modify-syntax-entry char "." table))
    table)
  "Syntax table for `attn-mode'.")

(defun attn-indent-line ()
  "Indent the current line by its depth in braces, brackets and parentheses.
A kernel header's `on' and `spec' lines stand one level in."
  (interactive)
  (let* ((depth (save-excursion (car (syntax-ppss (line-beginning-position)))))
         (closer (save-excursion
                   (back-to-indentation)
                   (looking-at-p "[]})]")))
         (clause (save-excursion
                   (back-to-indentation)
                   (looking-at-p "\\_<\\(?:on\\|spec\\)\\_>")))
         (column (* attn-indent-offset (+ (max 0 (if closer (1- depth) depth)) (if clause 1 0))))
         (offset (- (current-column) (current-indentation))))
    (indent-line-to column)
    (when (> offset 0)
      (forward-char offset))))

;;;###autoload
(define-derived-mode attn-mode prog-mode "Attn"
  "Major mode for editing attnlang (.attn) programs.

\\{attn-mode-map}"
  :syntax-table attn-mode-syntax-table
  (setq-local comment-start "# ")
  (setq-local comment-end "")
  (setq-local comment-start-skip "#+[ \t]*")
  (setq-local indent-line-function #'attn-indent-line)
  (setq-local indent-tabs-mode nil)
  (setq-local electric-indent-chars (append "{}[]()" electric-indent-chars))
  (setq-local font-lock-defaults '(attn-font-lock-keywords)))

;;;###autoload
(add-to-list 'auto-mode-alist '("\\.attn\\'" . attn-mode))

(provide 'attn-mode)

;;; attn-mode.el ends here
